/**
 * A property of an L1 resource read as CloudFormation will see it, with every reference (`Ref`, `Fn::GetAtt`) kept
 * as the token it is. A reference to another stack's resource, or to a nested stack's parent, becomes an export and
 * an `Fn::ImportValue` (or a nested stack parameter) only when CDK prepares the app, after the Aspects ran; written
 * back resolved, it would be a `Ref` to a logical id the template does not have, which CloudFormation rejects.
 * So the reader puts a marker where each reference was, and `restore` puts the very token back.
 */
import { CfnResource, DefaultTokenResolver, IFragmentConcatenator, IResolvable, IResolveContext, IPostProcessor, Reference, Stack, Tokenization } from 'aws-cdk-lib';
import { renderedResource } from './cdk-internals';

/** The marker of a kept reference: it looks like an intrinsic, so `Stack.toJsonString` joins it in as one. */
const MARK = 'Fn::CdkEcrPtcKept';

/** CloudFormation's own concatenation of fragments: adjacent strings merged, anything else through `Fn::Join`. */
const CFN_CONCAT: IFragmentConcatenator = {
  join: (left: unknown, right: unknown) => {
    const parts = (x: unknown): unknown[] => isJoin(x) ? x['Fn::Join'][1] : x === undefined ? [] : [x];
    const out: unknown[] = [];
    for (const part of [...parts(left), ...parts(right)]) {
      if (typeof part === 'string' && typeof out[out.length - 1] === 'string') {
        out[out.length - 1] += part;
      } else {
        out.push(part);
      }
    }
    return out.length === 1 && typeof out[0] === 'string' ? out[0] : { 'Fn::Join': ['', out] };
  },
};

function isJoin(x: unknown): x is { 'Fn::Join': [string, unknown[]] } {
  const join = (x as { 'Fn::Join'?: unknown } | undefined)?.['Fn::Join'];
  return typeof x === 'object' && x !== null && Object.keys(x).length === 1 && Array.isArray(join) && join[0] === '' && Array.isArray(join[1]);
}

/** Resolves everything but references, which it replaces by markers. */
class ReferenceKeepingResolver extends DefaultTokenResolver {
  public readonly kept: IResolvable[] = [];

  constructor() {
    super(CFN_CONCAT);
  }

  public resolveToken(t: IResolvable, context: IResolveContext, postProcessor: IPostProcessor): unknown {
    if (Reference.isReference(t)) {
      this.kept.push(t);
      return { [MARK]: this.kept.length - 1 };
    }
    return super.resolveToken(t, context, postProcessor);
  }
}

/** One property, resolved with its references kept. */
export interface KeptProperty {
  /** The property's value, each reference a marker object (a non-string part of an `Fn::Join`, or a whole value). */
  readonly value: unknown;
  /** A value made from `value` (markers copied as they are) with each marker replaced by its reference token. */
  restore(value: unknown): unknown;
}

/**
 * Reads `property` of `cfn` as synthesis renders it (`_toCloudFormation`, the call synthesis makes: custom resources
 * expose no typed getter), overrides included, references kept. Undefined when the resource has no such property.
 */
export function readCfnProperty(cfn: CfnResource, property: string): KeptProperty | undefined {
  const rendered = renderedResource(cfn);
  const resolver = new ReferenceKeepingResolver();
  const resolved: { Resources: Record<string, { Properties?: Record<string, unknown> }> } =
    Tokenization.resolve(rendered, { scope: Stack.of(cfn), resolver, preparing: false });
  const value = Object.values(resolved.Resources)[0]?.Properties?.[property];
  if (value === undefined) {
    return undefined;
  }
  const restore = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      return v.map(restore);
    }
    if (typeof v === 'object' && v !== null) {
      const keys = Object.keys(v);
      const index = (v as Record<string, unknown>)[MARK];
      if (keys.length === 1 && typeof index === 'number' && resolver.kept[index] !== undefined) {
        return resolver.kept[index];
      }
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, restore(x)]));
    }
    return v;
  };
  return { value, restore };
}
