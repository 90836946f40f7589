/**
 * The data layer: one function per question the product asks. Every function takes the open Database first and,
 * when it acts for a person, that person's user id second, and only ever reads or writes that user's rows; an
 * id of another user's row is NOT_FOUND, as an unknown one. Every failure is a DbError with a stable code.
 */
export { openDatabase, startDatabase, migrateDatabase, MIGRATIONS_FOLDER, type Database, type Driver, type OpenDatabaseOptions } from './client.ts';
export { DbError, type DbErrorCode } from './errors.ts';
export { LIMITS, cursorOf, type Page } from './guard.ts';
export { newId, isId } from './ids.ts';
export { contentHash, encodeTokens, decodeTokens, MAX_TOKENS } from './tokens.ts';
export {
  createUser,
  getUser,
  findOrCreateDiscordUser,
  deleteUser,
  createApiKey,
  listApiKeys,
  revokeApiKey,
  authenticateApiKey,
  hashApiKey,
  type User,
  type ApiKey,
} from './users.ts';
export {
  createConversation,
  listConversations,
  getConversation,
  renameConversation,
  deleteConversation,
  addTurn,
  getTurn,
  getTurnPath,
  getTurnJobId,
  getImageTurnId,
  deleteTurn,
  searchTurns,
  type Conversation,
  type Turn,
  type TurnHit,
  type NewTurn,
  type TurnResult,
  type TurnImageInput,
} from './conversations.ts';
export {
  getImage,
  getImagePng,
  setImagePng,
  listImages,
  listImageChildren,
  findImagesByHash,
  type Image,
  type ImageSummary,
  type NewImage,
} from './images.ts';
export {
  getJob,
  listJobs,
  cancelJob,
  claimNextJob,
  renewJobLease,
  completeJob,
  failJob,
  recoverInterruptedJobs,
  DEFAULT_LEASE_MS,
  type Job,
  type ClaimedJob,
} from './jobs.ts';
export {
  exportHistory,
  ownerOfConversation,
  importHistory,
  parseExport,
  EXPORT_FORMAT,
  EXPORT_VERSION,
  type DialectExport,
  type ExportOptions,
  type ImportOptions,
  type ImportSummary,
  type RenderPng,
} from './export.ts';
export type {
  ImageOrigin,
  JobStatus,
  TurnRole,
  TurnSettings,
  TurnStatus,
  TurnTask,
  StageTimings,
} from './schema/index.ts';
