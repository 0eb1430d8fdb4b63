/**
 * The public settings of backfill and teardown (`PullThroughCacheRulesProps.adoptExistingRepositories`, `adoption`,
 * `cachedRepositoryRemoval`); the constructs behind them are in `cached-repositories.ts`.
 */

/** What happens to the repositories a cache created when its stack is deleted. */
export enum CachedRepositoryRemoval {
  /**
   * Keep them, with their images (and their storage cost). docs/ADOPTION.md says how to delete them by hand.
   */
  RETAIN = 'RETAIN',

  /**
   * Dry run of `DESTROY_WITH_IMAGES`: on stack delete, log the repositories it would delete (the log line
   * `teardown report` of the teardown function) and delete nothing. The templates tag the repositories they create,
   * as with `DESTROY_WITH_IMAGES`, so switching to it later deletes exactly what was listed.
   */
  LIST_ONLY = 'LIST_ONLY',

  /**
   * On stack delete, after the pull through cache rules are gone, delete every repository under the cache's pull
   * through cache prefixes that the cache's creation templates created, with all its images. Repositories the
   * templates did not create (made before this setting, by hand, or by another rule) are kept and listed.
   */
  DESTROY_WITH_IMAGES = 'DESTROY_WITH_IMAGES',
}

/** How existing repositories are adopted (`adoptExistingRepositories`). */
export interface CacheAdoptionOptions {
  /**
   * Replace lifecycle policies this cache did not write (ones that are neither the template's current policy nor
   * the one it had before). Off, such repositories keep their policy and are reported as skipped.
   * @default false
   */
  readonly replaceOtherLifecyclePolicies?: boolean;
}
