export * from './image-reference';
export * from './image-mapping';
export * from './upstream-credentials';
export * from './upstream-registry';
export * from './pull-through-cache-rules';
export * from './cached-images';
export * from './scanning/cache-scanning';
export * from './monitoring/cache-monitoring';
