/**
 * Values some charts need beside relocated images, for the CachedImages Aspect and the ecr-ptc CLI alike:
 * the companion to the image conventions of helm-images.ts (docs/HELM-CONVENTIONS.md, "Companion values").
 *
 * Bitnami charts refuse to render when an image is not the one the chart names, unless
 * `global.security.allowInsecureImages` is true (the `common.warnings.modifiedImages` check; bitnami/charts#30850,
 * https://github.com/bitnami/charts/issues/30850): `helm install` fails, and the stack rolls back.
 */
import { ImageReference } from '../image-reference';

/** A value a chart needs set once its images move. */
export interface CompanionValue {
  /** Its path in the values: `['global', 'security', 'allowInsecureImages']`. */
  readonly path: readonly string[];
  readonly value: unknown;
  /** Why, for the note that says it was set. */
  readonly why: string;
}

/** Docker Hub organisations of Bitnami's images: a chart that uses them runs the modified-images check. */
const BITNAMI_REPOSITORY = /^(bitnami|bitnamilegacy|bitnamisecure)\//;

/**
 * The companion values the charts of these images need once the images move, given their references as written
 * upstream (`bitnami/postgresql:17`, `docker.io/bitnami/git`): the one list, whatever the values already say.
 */
export function companionValuesFor(moved: readonly string[]): CompanionValue[] {
  const bitnami = moved.some(image => {
    try {
      const ref = ImageReference.parse(image);
      return ref.registry === 'docker.io' && BITNAMI_REPOSITORY.test(ref.repository);
    } catch {
      return false;
    }
  });
  return bitnami ? [{
    path: ['global', 'security', 'allowInsecureImages'],
    value: true,
    why: 'Bitnami charts refuse images other than their own (bitnami/charts#30850) unless global.security.allowInsecureImages is '
      + 'true; the images are the same, copied by ECR from Docker Hub',
  }] : [];
}

/**
 * The companion values `values` lacks, given the references (as written) of the images that move out of it.
 * Pure: the caller sets them its own way.
 */
export function missingCompanionValues(values: unknown, moved: readonly string[]): CompanionValue[] {
  return companionValuesFor(moved).filter(companion => valueAt(values, companion.path) !== companion.value);
}

/** Sets a companion value in a values object, making the maps on its path. */
export function setCompanionValue(values: Record<string, unknown>, companion: CompanionValue): void {
  let holder = values;
  for (const key of companion.path.slice(0, -1)) {
    const next = holder[key];
    holder = (holder[key] = typeof next === 'object' && next !== null && !Array.isArray(next) ? next : {}) as Record<string, unknown>;
  }
  holder[companion.path[companion.path.length - 1]] = companion.value;
}

function valueAt(values: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((v, key) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined), values);
}
