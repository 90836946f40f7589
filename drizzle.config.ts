import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes a new SQL migration into migrations/ from the schema's changes; `npm run db:migrate`
// applies them (the server also applies them at start). The same SQL runs on PGlite (PostgreSQL 18) and on a
// PostgreSQL server (15 and later), so keep to features both have.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema/*.ts',
  out: './migrations',
  strict: true,
});
