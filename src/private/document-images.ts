/**
 * One document's images, judged and edited: the locator's sites (image-locator.ts), Helm maps read and planned
 * (helm-images.ts), each edit applied through the caller's `Editor`. The ecr-ptc CLI edits YAML text, the
 * CachedImages Aspect edits a plain object; the decisions are made here, once.
 */
import { HelmConvention, HelmPlanInput, HelmReading, inlineSuffix, namesARegistry, planHelmMaps, readHelmMap } from './helm-images';
import { LocateOptions, locateImages } from './image-locator';
import { DocumentFormat, HELM_FIELDS, HelmField, HelmShared, Tree } from './locator-tree';

/** The fields of a Helm image map that a plan may set. */
const EDITED_FIELDS: ReadonlySet<HelmField> = new Set(['registry', 'repository', 'image']);

/** The caller's decision about one reference. */
export interface Verdict {
  /** The new value of a whole-reference field, when the reference moves to the cache. */
  readonly uri?: string;
  /** The cache repository path (no registry, tag or digest), when the reference moves to the cache. */
  readonly cachePath?: string;
}

/** How the caller edits its document. */
export interface Editor<N> {
  /** Why a value cannot be edited in place (an alias, a block scalar...), or undefined when it can. */
  notEditable(node: N): string | undefined;
  /** Sets a scalar's value. */
  set(node: N, value: string): void;
  /** Adds a key with an empty string value to a map, when the caller can add keys. */
  addEmpty?(map: N, key: string): void;
  /**
   * Adds a key with a value after a map's last key, when the caller can; returns why not (a flow map...), or
   * undefined when added.
   */
  addKey?(map: N, key: string, value: string): string | undefined;
}

/** What became of one image of the document. */
export type DocumentImage<N, V> =
  /**
   * Judged by the caller; `held` says why a reference that would move stays (it is then not edited); `caution`
   * is a doubt about an edit that was made.
   */
  | { readonly path: string; readonly node: N; readonly image: string; readonly verdict: V; readonly held?: string; readonly caution?: string }
  /** Seen and left alone: not pulled as written, or not readable safely. */
  | {
    readonly path: string;
    readonly node?: N;
    readonly image: string;
    readonly skipped: string;
    readonly informational?: boolean;
    readonly uncertain?: boolean;
    readonly setting?: boolean;
  };

/**
 * Judges and edits every image of one document. `judge` is called once per site with the reference; an edit is
 * applied only where the verdict has a `uri` (a whole value) or a `cachePath` (a Helm map).
 */
export function rewriteDocument<N, V extends Verdict>(
  tree: Tree<N>, root: N, judge: (image: string) => V, editor: Editor<N>, registryUri: string | undefined,
  format?: DocumentFormat, options: LocateOptions = {},
): Array<DocumentImage<N, V>> {
  const sites = locateImages(tree, root, format, options);
  const results: Array<DocumentImage<N, V>> = [];
  for (const skipped of sites.skipped) {
    results.push({ ...skipped, skipped: skipped.reason });
  }
  for (const site of sites.strings) {
    const verdict = judge(site.image);
    const blocked = verdict.uri !== undefined ? editor.notEditable(site.node) : undefined;
    if (verdict.uri !== undefined && blocked === undefined) {
      editor.set(site.node, verdict.uri);
    }
    results.push({ path: site.path, node: site.node, image: site.image, verdict, held: blocked });
  }
  for (const hub of sites.hubs) {
    // Istio: the cache path of `<hub>/<name>`, less the name, is the new hub; the bare names stay
    const name = hub.names[0] ?? 'image';
    const verdict = judge(`${hub.hub}/${name}`);
    let held: string | undefined;
    if (verdict.cachePath !== undefined && registryUri !== undefined) {
      held = !verdict.cachePath.endsWith(`/${name}`) ? `the cache path ${verdict.cachePath} does not end with the image name ${name}`
        : editor.notEditable(hub.node);
      if (held === undefined) {
        editor.set(hub.node, `${registryUri}/${verdict.cachePath.slice(0, -name.length - 1)}`);
      }
    }
    results.push({ path: hub.path, node: hub.node, image: `${hub.hub}/${name}`, verdict, held });
  }
  for (const entry of sites.kustomize) {
    // kustomize: the entry moves by its newName, set or added; name, newTag and digest stay
    const verdict = judge(entry.image);
    let held: string | undefined;
    if (verdict.cachePath !== undefined && registryUri !== undefined) {
      const newName = `${registryUri}/${verdict.cachePath}`;
      if (entry.newName !== undefined) {
        held = editor.notEditable(entry.newName);
        if (held === undefined) {
          editor.set(entry.newName, newName);
        }
      } else {
        const why = editor.addKey === undefined ? 'keys cannot be added here' : editor.addKey(entry.node, 'newName', newName);
        held = why && `the kustomize image entry has no newName and one cannot be added (${why}): add newName: ${newName}`;
      }
    }
    results.push({ path: entry.path, node: entry.node, image: entry.image, verdict, held });
  }
  if (sites.helmMaps.length === 0) {
    return results;
  }

  const shared: Partial<Record<HelmShared, string>> = {};
  const sharedBlocked: Partial<Record<HelmShared, string>> = {};
  for (const [name, found] of Object.entries(sites.shared) as Array<[HelmShared, { node: N }]>) {
    shared[name] = tree.text(found.node);
    const why = editor.notEditable(found.node);
    if (why !== undefined) {
      sharedBlocked[name] = why;
    }
  }
  const inputs: HelmPlanInput[] = sites.helmMaps.map(map => {
    const values: Partial<Record<HelmField, string>> = {};
    for (const field of HELM_FIELDS) {
      const node = map.fields[field];
      if (node !== undefined) {
        values[field] = tree.text(node);
      }
    }
    // only the fields a plan may set must be editable: a tag or digest is never edited
    const problems = (Object.entries(map.fields) as Array<[HelmField, N]>)
      .filter(([field]) => EDITED_FIELDS.has(field))
      .map(([field, node]) => ({ field, why: editor.notEditable(node) }))
      .filter(p => p.why !== undefined)
      .map(p => `${p.field} is ${p.why}`);
    const whole = editor.notEditable(map.node);
    return {
      reading: readHelmMap(values, new Set(Object.keys(map.fields) as HelmField[]), shared,
        Object.fromEntries(map.otherRegistries.map(([key, node]) => [key, tree.text(node)!]))),
      present: new Set(Object.keys(map.fields) as HelmField[]),
      ownRegistry: values.registry !== undefined && values.registry !== '',
      blocked: [...(whole !== undefined ? [`the map is ${whole}`] : []), ...problems].join('; ') || undefined,
    };
  });
  const extras = sites.helmMaps.map((map, i) =>
    secondRepositories(tree, map.path, map.otherRepositories, inputs[i].reading, map.fields, shared, judge, editor));
  extras.forEach((list, i) => {
    const stuck = list.find(e => e.why !== undefined);
    const reading = inputs[i].reading;
    if (stuck !== undefined && 'convention' in reading && reading.hostFrom !== undefined) {
      // the registry the second repository shares would change under it
      const why = `its ${stuck.key} cannot move with it (${stuck.why})`;
      inputs[i] = { ...inputs[i], blocked: inputs[i].blocked ? `${inputs[i].blocked}; ${why}` : why };
    }
  });
  const verdicts = inputs.map(input => 'convention' in input.reading ? judge(input.reading.reference) : undefined);
  const plan = planHelmMaps(inputs, verdicts, shared, sharedBlocked, registryUri ?? '');

  const moved = sites.helmMaps.map(() => false);
  sites.helmMaps.forEach((map, i) => {
    const reading = inputs[i].reading;
    if ('empty' in reading) {
      if (map.fields.repository !== undefined) {
        // traefik's `image: {registry: , repository: , tag: }`: the template fills in docker.io/traefik, which check must
        // see. A map that probably inherits another (grafana's and argo-cd's "null = inherit") is listed too, naming the
        // likely source: only the chart's template knows, and check fails closed (--allow-skipped accepts it).
        const source = inheritedFrom(sites.helmMaps.map(m => m.path), inputs.map(input => input.reading), i);
        results.push({
          path: map.path,
          node: map.node,
          image: describe(tree, map.fields) || '(empty)',
          skipped: source
            ? `Helm image map with an empty repository: the chart fills it in, perhaps from ${source} (moved with it if that map moved), perhaps with an image of its own; `
              + 'set repository (and registry) to be sure'
            : 'Helm image map with an empty repository: the chart\'s default image applies; set repository (and registry) to move it',
        });
      }
      return; // no image named here: another map (tempo's `tempo.image` under `ingester.image: {repository: null}`) decides
    }
    if ('problem' in reading) {
      results.push({ path: map.path, node: map.node, image: reading.reference ?? describe(tree, map.fields), skipped: `Helm image map left whole: ${reading.problem}` });
      return;
    }
    const mapPlan = plan.maps[i];
    const verdict = verdicts[i]!;
    if (mapPlan.held !== undefined || verdict.cachePath === undefined || registryUri === undefined) {
      // `held` is set for a map that cannot be edited even when it would not move: the caller may need to know
      results.push({ path: map.path, node: map.node, image: reading.reference, verdict, held: mapPlan.held && `Helm image map left whole: ${mapPlan.held}` });
      return;
    }
    for (const [field, value] of Object.entries(mapPlan.set) as Array<[HelmField, string]>) {
      editor.set(map.fields[field]!, value);
    }
    moved[i] = true;
    for (const field of mapPlan.addEmpty) {
      editor.addEmpty?.(map.node, field);
    }
    // a repository without a registry host is where a chart's default registry (Bitnami's) would go in front
    const caution = mapPlan.addEmpty.length > 0 && editor.addEmpty === undefined && !namesARegistry(reading.reference)
      ? `the map has no ${mapPlan.addEmpty.join(', ')}: if the chart has a default one (Bitnami: docker.io), set ${mapPlan.addEmpty.map(f => `${f}: ""`).join(', ')} beside it`
      : undefined;
    results.push({ path: map.path, node: map.node, image: reading.reference, verdict, caution });
  });
  // a second repository moves with the map, under the same registry; otherwise it is listed with why
  extras.forEach((list, i) => list.forEach(extra => {
    const reading = inputs[i].reading;
    if (extra.verdict === undefined) {
      const skipped = `a second repository of a Helm image map, left as written: ${extra.why}`;
      results.push({ path: extra.path, node: extra.node, image: extra.image, skipped });
      return;
    }
    const cachePath = extra.verdict.cachePath;
    if (moved[i] && extra.why === undefined && cachePath !== undefined && 'convention' in reading) {
      editor.set(extra.node, `${reading.hostFrom === undefined ? `${registryUri}/` : ''}${cachePath}${inlineSuffix(extra.text)}`);
      results.push({ path: extra.path, node: extra.node, image: extra.image, verdict: extra.verdict });
      return;
    }
    const held = cachePath === undefined ? undefined : extra.why ?? 'it moves only with the map\'s repository, which stays';
    results.push({ path: extra.path, node: extra.node, image: extra.image, verdict: extra.verdict, held: held && `a second repository of a Helm image map, left as written: ${held}` });
  }));
  for (const [name, value] of Object.entries(plan.shared) as Array<[HelmShared, string]>) {
    editor.set(sites.shared[name]!.node, value);
  }
  return results;
}

/** A `<something>Repository` key beside a map's `repository` (gatekeeper's `crdRepository`), read under the map's registry. */
interface SecondRepository<N, V> {
  readonly key: string;
  readonly path: string;
  readonly node: N;
  readonly text: string;
  readonly image: string;
  /** The caller's verdict; undefined when the reference cannot be read safely. */
  readonly verdict?: V;
  /** Why it cannot move with the map, if it cannot. */
  readonly why?: string;
}

/**
 * The second repositories of a map: read like `repository` under the registry the map's convention gives it, when
 * the convention is registry + repository; otherwise (another convention, a map left whole) not readable.
 */
function secondRepositories<N, V extends Verdict>(tree: Tree<N>, mapPath: string, found: ReadonlyArray<readonly [string, N]>, reading: HelmReading,
  fields: Partial<Record<HelmField, N>>, shared: Partial<Record<HelmShared, string>>, judge: (image: string) => V, editor: Editor<N>,
): Array<SecondRepository<N, V>> {
  return found.map(([key, node]) => {
    const text = tree.text(node)!;
    const base = { key, path: mapPath ? `${mapPath}.${key}` : key, node, text, image: text };
    if (!('convention' in reading) || reading.convention !== HelmConvention.REPOSITORY) {
      return { ...base, why: 'the map is not of the registry + repository convention, or is left whole: point it at the cache by hand' };
    }
    const host = reading.hostFrom === 'registry' ? (fields.registry !== undefined ? tree.text(fields.registry) : undefined) : reading.hostFrom !== undefined ? shared[reading.hostFrom] : undefined;
    if (host !== undefined && namesARegistry(text)) {
      return { ...base, why: `'${text}' names a registry and the map's registry is '${host}' too: which one the chart uses depends on its template` };
    }
    const image = host !== undefined ? `${host}/${text}` : text;
    const verdict = judge(image);
    const why = verdict.cachePath === undefined ? 'it is not served from the cache' : editor.notEditable(node);
    return { ...base, image, verdict, why };
  });
}

/**
 * The map an empty image map probably inherits, by the "null = inherit" convention of grafana's charts (tempo, loki:
 * `ingester.image: {registry: null, repository: null}` "overrides `tempo.image`") or argo-cd's (`dex.initImage:
 * {repository: ""}` "defaults to global.image.repository"): another map under the same key, or `global.image`, names
 * an image. A map at the top of the values (`image:`) is the chart's own image and inherits nothing.
 */
function inheritedFrom(paths: readonly string[], readings: readonly HelmReading[], index: number): string | undefined {
  const lastKey = (path: string) => path.slice(path.lastIndexOf('.') + 1);
  const path = paths[index];
  return path.includes('.') ? paths.find((other, j) => j !== index && !('empty' in readings[j])
    && (lastKey(other) === lastKey(path) || /(^|\.)global\.image$/.test(other))) : undefined;
}

/** A map's fields, for a message when it names no readable reference. */
function describe<N>(tree: Tree<N>, fields: Partial<Record<HelmField, N>>): string {
  return (Object.entries(fields) as Array<[HelmField, N]>).map(([k, v]) => `${k}: ${tree.text(v) ?? '...'}`).join(', ');
}


