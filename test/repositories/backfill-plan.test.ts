import { canonicalPolicy, planBackfill, RepositoryState, WantedSettings } from '../../src/repositories/backfill-plan';

const OURS = '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":100},"action":{"type":"expire"}}]}';
const BEFORE = OURS.replace('100', '200');
const THEIRS = OURS.replace('100', '3');
const wanted = (extra: Partial<WantedSettings> = {}): WantedSettings => ({
  lifecyclePolicy: OURS, tags: new Map([['team', 'platform']]), encryptionType: 'AES256', replaceOtherLifecyclePolicies: false, ...extra,
});
const repo = (extra: Partial<RepositoryState> = {}): RepositoryState => ({ name: 'docker-hub/library/nginx', tags: new Map(), ...extra });

describe('lifecycle policy: ours and theirs', () => {
  test.each([
    ['no policy: adopted', repo(), undefined, { action: 'set', reason: 'had none' }],
    ['the template\'s policy already', repo({ lifecyclePolicy: OURS }), undefined, { action: 'keep', reason: 'current' }],
    ['the template\'s policy, spaced and ordered differently by ECR', repo({
      lifecyclePolicy:
      '{ "rules": [ { "action": { "type": "expire" }, "selection": { "countNumber": 100, "countType": "imageCountMoreThan", '
      + '"tagStatus": "any" }, "rulePriority": 1 } ] }',
    }), undefined, { action: 'keep', reason: 'current' }],
    ['the previous template\'s policy: re-applied', repo({ lifecyclePolicy: BEFORE }), wanted({ lifecyclePolicy: BEFORE }),
      { action: 'set', reason: 'previous template policy' }],
    ['a policy someone wrote: kept', repo({ lifecyclePolicy: THEIRS }), wanted({ lifecyclePolicy: BEFORE }),
      { action: 'skip', reason: 'has a lifecycle policy this cache did not write' }],
    ['a policy of unknown origin on a create (no previous template): kept', repo({ lifecyclePolicy: BEFORE }), undefined,
      { action: 'skip', reason: 'has a lifecycle policy this cache did not write' }],
    ['text that is not JSON: theirs', repo({ lifecyclePolicy: 'not json' }), undefined,
      { action: 'skip', reason: 'has a lifecycle policy this cache did not write' }],
  ])('%s', (_, repository, previous, decision) => {
    expect(planBackfill(repository, wanted(), previous).lifecycle).toEqual(decision);
  });

  test('replaceOtherLifecyclePolicies replaces a policy someone wrote', () => {
    expect(planBackfill(repo({ lifecyclePolicy: THEIRS }), wanted({ replaceOtherLifecyclePolicies: true })).lifecycle)
      .toEqual({ action: 'set', reason: 'replaced its own policy' });
  });

  test('a template without a policy (lifecycleRules: []) removes none', () => {
    expect(planBackfill(repo({ lifecyclePolicy: THEIRS }), wanted({ lifecyclePolicy: undefined, replaceOtherLifecyclePolicies: true }))
      .lifecycle).toEqual({ action: 'keep', reason: 'template has none' });
  });

  test('canonicalPolicy ignores spacing and key order, and keeps rule order', () => {
    expect(canonicalPolicy('{"b":1, "a":[2,1]}')).toBe('{"a":[2,1],"b":1}');
    expect(canonicalPolicy('  ')).toBeUndefined();
  });
});

describe('tags', () => {
  test('sets the missing and different ones, leaves the repository\'s others', () => {
    const plan = planBackfill(repo({ tags: new Map([['team', 'apps'], ['owner', 'me']]) }),
      wanted({ tags: new Map([['team', 'platform'], ['cost-center', '42']]) }));
    expect([...plan.tagsToSet]).toEqual([['team', 'platform'], ['cost-center', '42']]);
    expect(plan.tagsToRemove).toEqual([]);
  });

  test('removes a tag the template dropped only where it still has the template\'s old value', () => {
    const previous = wanted({ tags: new Map([['team', 'platform'], ['cost-center', '42']]) });
    expect(planBackfill(repo({ tags: new Map([['team', 'platform'], ['cost-center', '42']]) }), wanted(), previous).tagsToRemove)
      .toEqual(['cost-center']);
    expect(planBackfill(repo({ tags: new Map([['team', 'platform'], ['cost-center', '7']]) }), wanted(), previous).tagsToRemove)
      .toEqual([]);
  });
});

describe('encryption: reported, never changed', () => {
  test.each([
    [repo(), undefined],
    [repo({ encryptionType: 'AES256' }), undefined],
    [repo({ encryptionType: 'KMS' }), 'encrypted with KMS, the template says AES256'],
  ])('%#', (repository, difference) => {
    expect(planBackfill(repository, wanted()).encryptionDiffers).toBe(difference);
  });

  test('another KMS key', () => {
    expect(planBackfill(repo({ encryptionType: 'KMS', kmsKey: 'arn:aws:kms:eu-west-1:1:key/a' }),
      wanted({ encryptionType: 'KMS', kmsKey: 'arn:aws:kms:eu-west-1:1:key/b' })).encryptionDiffers)
      .toBe('encrypted with the KMS key arn:aws:kms:eu-west-1:1:key/a, the template says arn:aws:kms:eu-west-1:1:key/b');
  });
});
