/**
 * `@truss/react`: a provider and hooks over `@truss/client` for React 18
 * and 19.
 *
 * @module
 */
export {};
