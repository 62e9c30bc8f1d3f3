/**
 * graphql-js, as the one copy yoga uses. The package ships index.js (CommonJS) and index.mjs
 * without an exports map: Node loads index.js for a bare `graphql`, but Vite-based tools (vitest)
 * pick index.mjs, and the two copies' GraphQLError classes fail each other's instanceof checks,
 * so yoga would mask our own refusals. Naming the file makes every loader pick yoga's copy.
 */
export * from 'graphql/index.js';
