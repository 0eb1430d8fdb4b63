import * as ecr from 'aws-cdk-lib/aws-ecr';

/**
 * Renders `ecr.LifecycleRule`s as an ECR lifecycle policy document (JSON text), with the checks ECR
 * would otherwise only make at deploy time. Rules without a priority are numbered after the explicit ones,
 * in order, with `TagStatus.ANY` rules last (ECR requires them to have the highest priority).
 *
 * @param context prefix for error messages
 */
export function renderLifecyclePolicy(rules: readonly ecr.LifecycleRule[], context: string): string {
  const explicit = rules.filter(r => r.rulePriority !== undefined).map(r => r.rulePriority!);
  if (new Set(explicit).size !== explicit.length) {
    throw new Error(`${context}: two lifecycle rules have the same rulePriority (${explicit.join(', ')}); priorities must be unique.`);
  }
  const withStatus = rules.map(rule => ({ rule, tagStatus: effectiveTagStatus(rule) }));
  const isAny = (r: { tagStatus: ecr.TagStatus }) => r.tagStatus === ecr.TagStatus.ANY;
  if (withStatus.filter(isAny).length > 1) {
    throw new Error(`${context}: only one lifecycle rule may have tagStatus ANY (a rule with no tag lists is ANY).`);
  }
  let next = Math.max(0, ...explicit) + 1;
  const numbered = [...withStatus.filter(r => !isAny(r)), ...withStatus.filter(isAny)]
    .map(r => ({ ...r, priority: r.rule.rulePriority ?? next++ }));

  const anyRule = numbered.find(isAny);
  if (anyRule && numbered.some(n => n !== anyRule && n.priority > anyRule.priority)) {
    throw new Error(`${context}: the lifecycle rule with tagStatus ANY must have the highest rulePriority (it has ${anyRule.priority}).`);
  }
  const rendered = numbered
    .sort((a, b) => a.priority - b.priority)
    .map(({ rule, tagStatus, priority }) => renderRule(rule, tagStatus, priority, context));
  return JSON.stringify({ rules: rendered });
}

/** ECR's own default: a rule with tag lists selects tagged images, one without selects any. */
function effectiveTagStatus(rule: ecr.LifecycleRule): ecr.TagStatus {
  return rule.tagStatus ?? (rule.tagPrefixList?.length || rule.tagPatternList?.length ? ecr.TagStatus.TAGGED : ecr.TagStatus.ANY);
}

function renderRule(rule: ecr.LifecycleRule, tagStatus: ecr.TagStatus, priority: number, context: string): object {
  const where = `${context}: lifecycle rule ${priority}`;
  if ((rule.maxImageCount === undefined) === (rule.maxImageAge === undefined)) {
    throw new Error(`${where} must set exactly one of maxImageCount and maxImageAge.`);
  }
  if (tagStatus === ecr.TagStatus.TAGGED && !rule.tagPrefixList?.length && !rule.tagPatternList?.length) {
    throw new Error(`${where}: tagStatus TAGGED needs tagPrefixList or tagPatternList.`);
  }
  if (rule.tagPrefixList?.length && rule.tagPatternList?.length) {
    throw new Error(`${where}: set tagPrefixList or tagPatternList, not both.`);
  }
  if (rule.maxImageCount !== undefined && (!Number.isInteger(rule.maxImageCount) || rule.maxImageCount < 1)) {
    throw new Error(`${where}: maxImageCount must be a whole number of at least 1 (got ${rule.maxImageCount}).`);
  }
  const days = rule.maxImageAge?.toDays();
  if (days !== undefined && days < 1) {
    throw new Error(`${where}: maxImageAge must be at least one day.`);
  }
  return {
    rulePriority: priority,
    ...(rule.description ? { description: rule.description } : {}),
    selection: {
      tagStatus,
      ...(rule.tagPrefixList?.length ? { tagPrefixList: rule.tagPrefixList } : {}),
      ...(rule.tagPatternList?.length ? { tagPatternList: rule.tagPatternList } : {}),
      ...(rule.maxImageCount !== undefined
        ? { countType: 'imageCountMoreThan', countNumber: rule.maxImageCount }
        : { countType: 'sinceImagePushed', countUnit: 'days', countNumber: days }),
    },
    action: { type: 'expire' },
  };
}
