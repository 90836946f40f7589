/** The whole schema, one module per aggregate; drizzle-kit reads the files of this folder. */
export * from './users.ts';
export * from './conversations.ts';
export * from './images.ts';
export * from './jobs.ts';
