/**
 * Images inside plain objects, as a CDK app holds Kubernetes manifests and Helm values: the same locator and
 * decisions as the ecr-ptc CLI (document-images.ts), applied to a copy of the object. Values known only at
 * deploy time (tokens) stay in place: the JSON is read with a placeholder for each, so everything known is
 * still rewritten, and only the images that hold a token are reported.
 */
import { randomBytes } from 'crypto';
import { DocumentImage, Verdict, rewriteDocument } from './document-images';
import { DocumentFormat, Tree } from './locator-tree';

/** A place in an object: a key of a holder (an object or an array). */
interface Slot { readonly holder: Record<string, unknown> | unknown[]; readonly key: string | number }

function valueOf(slot: Slot): unknown {
  return (slot.holder as Record<string | number, unknown>)[slot.key];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const OBJECT_TREE: Tree<Slot> = {
  entries: slot => {
    const value = valueOf(slot);
    return isObject(value) ? Object.keys(value).map(key => [key, { holder: value, key }] as const) : undefined;
  },
  items: slot => {
    const value = valueOf(slot);
    return Array.isArray(value) ? value.map((_, key) => ({ holder: value, key })) : undefined;
  },
  text: slot => {
    const value = valueOf(slot);
    return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
  },
};

/** What became of one image, with where it is in the object. */
export type ObjectImage<V> = DocumentImage<Slot, V>;

/**
 * Judges and rewrites, in place, every image of one object of the given format. `deployTime` tells values that
 * hold a token: they are never edited.
 */
export function rewriteObject<V extends Verdict>(
  value: unknown, format: DocumentFormat, judge: (image: string) => V, registryUri: string, deployTime: (text: string) => boolean,
): Array<ObjectImage<V>> {
  const root: Slot = { holder: [value], key: 0 };
  return rewriteDocument(OBJECT_TREE, root, judge, {
    notEditable: slot => {
      const text = OBJECT_TREE.text(slot);
      return text !== undefined && deployTime(text) ? 'known only at deploy time' : undefined;
    },
    set: (slot, newValue) => {
      (slot.holder as Record<string | number, unknown>)[slot.key] = newValue;
    },
    addEmpty: (slot, key) => {
      const map = valueOf(slot);
      if (isObject(map) && !(key in map)) {
        map[key] = '';
      }
    },
  }, registryUri, format);
}

/** JSON that CloudFormation joins at deploy time, read with a placeholder for each value it joins in. */
export interface JsonWithTokens {
  /** The parsed JSON, each deploy-time value a placeholder string (inside strings, or standing for a whole value). */
  readonly value: unknown;
  /** Whether a text holds a placeholder. */
  hasToken(text: string): boolean;
  /** The CloudFormation value of a JSON text written from `value`: a string, or `Fn::Join` with the tokens back. */
  restore(json: string): unknown;
  /** A text with each placeholder whose value `literal` knows at synth replaced by it. */
  withLiterals(text: string, literal: (token: unknown) => string | undefined): string;
}

/**
 * Reads a property that CloudFormation will see as JSON: a string, or `{ 'Fn::Join': ['', parts] }` where the
 * parts that are not strings are deploy-time values (Ref, GetAtt, ...). Returns undefined for anything else.
 */
export function parseJsonWithTokens(resolved: unknown): JsonWithTokens | undefined {
  const nonce = randomBytes(6).toString('hex');
  const placeholder = (i: number) => `@@ptc-${nonce}-${i}@@`;
  const pattern = new RegExp(`"@@ptc-${nonce}-(\\d+)@@"|@@ptc-${nonce}-(\\d+)@@`, 'g');
  let parts: unknown[];
  if (typeof resolved === 'string') {
    parts = [resolved];
  } else if (isObject(resolved) && Array.isArray(resolved['Fn::Join']) && resolved['Fn::Join'][0] === '' && Array.isArray(resolved['Fn::Join'][1])) {
    parts = resolved['Fn::Join'][1];
  } else {
    return undefined;
  }
  const tokens: unknown[] = [];
  const bare: boolean[] = [];
  let text = '';
  let inString = false;
  for (const part of parts) {
    if (typeof part === 'string') {
      for (let i = 0; i < part.length; i++) {
        if (inString && part[i] === '\\') {
          i++;
        } else if (part[i] === '"') {
          inString = !inString;
        }
      }
      text += part;
    } else {
      tokens.push(part);
      bare.push(!inString);
      text += inString ? placeholder(tokens.length - 1) : `"${placeholder(tokens.length - 1)}"`;
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return {
    value,
    hasToken: t => t.includes(`@@ptc-${nonce}-`),
    withLiterals: (t, literal) => t.replace(new RegExp(`@@ptc-${nonce}-(\\d+)@@`, 'g'), (p, i) => literal(tokens[Number(i)]) ?? p),
    restore: json => {
      if (tokens.length === 0) {
        return json;
      }
      const out: unknown[] = [];
      // adjacent strings merged and empty ones dropped, as CDK renders a Fn::Join of tokens
      const push = (p: unknown) => p === '' ? undefined : typeof p === 'string' && typeof out[out.length - 1] === 'string'
        ? out[out.length - 1] += p : out.push(p);
      let at = 0;
      for (const match of json.matchAll(pattern)) {
        push(json.slice(at, match.index));
        const index = Number(match[1] ?? match[2]);
        if (match[1] !== undefined && !bare[index]) {
          push('"');
          push(tokens[index]);
          push('"');
        } else {
          push(tokens[index]);
        }
        at = match.index! + match[0].length;
      }
      push(json.slice(at));
      return { 'Fn::Join': ['', out] };
    },
  };
}
