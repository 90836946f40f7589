/**
 * Image tokens at rest. TA-Tok codes are below the codebook size (512 shipped, 65,536 released), so each fits an
 * unsigned 16-bit integer: the `tokens` column holds them little-endian, 2 bytes a token (729 tokens: 1,458
 * bytes, against 2,916 + 24 for an int4[]; smallint[] would not hold codes above 32,767). The data layer gives
 * and takes plain `number[]`, as the API's `tokens: [Int!]!` does.
 */
import { createHash } from 'node:crypto';
import { DbError } from './errors.ts';

export const MAX_TOKENS = 4096;
export const MAX_CODEBOOK_SIZE = 65_536;

export function encodeTokens(tokens: readonly number[], codebookSize: number): Buffer {
  if (!Number.isInteger(codebookSize) || codebookSize < 2 || codebookSize > MAX_CODEBOOK_SIZE) {
    throw new DbError('INVALID_INPUT', `codebook size ${codebookSize} is not in [2, ${MAX_CODEBOOK_SIZE}]`, {
      field: 'codebookSize',
    });
  }
  if (tokens.length === 0) throw new DbError('INVALID_INPUT', 'an image needs at least one token', { field: 'tokens' });
  if (tokens.length > MAX_TOKENS) {
    throw new DbError('FIELD_TOO_LONG', `${tokens.length} tokens, at most ${MAX_TOKENS}`, { field: 'tokens' });
  }
  const bytes = Buffer.alloc(tokens.length * 2);
  tokens.forEach((token, index) => {
    if (!Number.isInteger(token) || token < 0 || token >= codebookSize) {
      throw new DbError('INVALID_INPUT', `token ${index} (${token}) is not a code of a ${codebookSize}-entry codebook`, {
        field: 'tokens',
      });
    }
    bytes.writeUInt16LE(token, index * 2);
  });
  return bytes;
}

export function decodeTokens(bytes: Uint8Array): number[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tokens = new Array<number>(buffer.length >> 1);
  for (let index = 0; index < tokens.length; index += 1) tokens[index] = buffer.readUInt16LE(index * 2);
  return tokens;
}

/**
 * The content hash of an image: sha256 over a canonical encoding of what defines it, namely its tokens, scale,
 * codebook size and the model version that will render them. It is the same for every origin (an upload too),
 * since the PNG is only a cache that may be missing; two uploads that encode to the same tokens are the same
 * image to the model.
 */
export function contentHash(input: { tokens: Buffer; scale: number; codebookSize: number; modelVersion: string }): string {
  const header = Buffer.from(
    `dialect-image-v1\n${input.modelVersion}\n${input.scale}\n${input.codebookSize}\n${input.tokens.length / 2}\n`,
    'utf8',
  );
  return createHash('sha256').update(header).update(input.tokens).digest('hex');
}
