/**
 * Images people give the bot: attachments of a slash command or of a message. They are checked before anything is
 * downloaded (a PNG or JPEG, within the server's byte limit), then sent to the API as base64. An image the bot
 * posted (`dialect-<id>.png`) is referred to by its id instead, so the model reads its stored tokens with no
 * re-encoding, as long as it belongs to the person asking; anyone else's copy is re-encoded from the attachment.
 */
import type { Attachment, Message } from 'discord.js';
import { type Actor, ApiUserError, type ImageInput, type ServerLimits } from './api-client.ts';
import { imageIdFromFileName } from './components/custom-ids.ts';
import type { BotContext } from './context.ts';
import { BotUserError } from './errors.ts';

const ACCEPTED = new Set(['image/png', 'image/jpeg', 'image/jpg']);
/** Used until the server's limits are known. */
const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

/** Throws a friendly BotUserError when the attachment is not a PNG/JPEG or is larger than the server accepts. */
export function checkAttachment(attachment: Pick<Attachment, 'name' | 'contentType' | 'size'>, limits: ServerLimits | undefined): void {
  const type = (attachment.contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const byName = /\.(png|jpe?g)$/i.test(attachment.name);
  if (!(ACCEPTED.has(type) || (type === '' && byName))) {
    throw new BotUserError(`\`${attachment.name}\` is ${type === '' ? 'not an image' : `a ${type} file`}: attach a PNG or JPEG image.`);
  }
  const max = limits?.maxUploadBytes ?? DEFAULT_MAX_BYTES;
  if (attachment.size > max) {
    throw new BotUserError(`\`${attachment.name}\` is ${formatBytes(attachment.size)}; Dialect accepts images up to ${formatBytes(max)}.`);
  }
}

/** The first image attachment of a message, if any. */
export function imageAttachment(message: Message): Attachment | undefined {
  return message.attachments.find((a) => (a.contentType ?? '').startsWith('image/') || /\.(png|jpe?g|gif|webp)$/i.test(a.name));
}

export async function downloadAttachment(attachment: Attachment): Promise<Buffer> {
  let response: Response;
  try {
    response = await fetch(attachment.url, { signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw new BotUserError("I couldn't download that attachment from Discord. Please try again.", { cause: error });
  }
  if (!response.ok) throw new BotUserError(`I couldn't download that attachment from Discord (HTTP ${response.status}). Please try again.`);
  return Buffer.from(await response.arrayBuffer());
}

export async function attachmentInput(ctx: BotContext, attachment: Attachment): Promise<ImageInput> {
  // After acknowledging there is time to refresh the limits (cached a minute; the last known when the API is down).
  checkAttachment(attachment, await ctx.api.limits().catch(() => ctx.api.knownLimits()));
  const bytes = await downloadAttachment(attachment);
  return { base64: bytes.toString('base64') };
}

/**
 * The image of a message for the actor: by id when it is one of the bot's results the actor owns (with its turn, to
 * continue that conversation), else the attachment's bytes.
 */
export async function messageImageInput(
  ctx: BotContext,
  actor: Actor,
  message: Message,
): Promise<{ image: ImageInput; imageId?: string; turnId?: string; conversationId?: string }> {
  const attachment = imageAttachment(message);
  if (attachment === undefined) throw new BotUserError('That message has no image: use a message with a PNG or JPEG attachment.');
  const storedId = message.author.id === ctx.client.user?.id ? imageIdFromFileName(attachment.name) : undefined;
  if (storedId !== undefined) {
    const owned = await ownedImage(ctx, actor, storedId);
    if (owned !== undefined) return owned;
  }
  return { image: await attachmentInput(ctx, attachment) };
}

/** The stored image by id when the actor owns it; undefined when it is someone else's. */
export async function ownedImage(
  ctx: BotContext,
  actor: Actor,
  imageId: string,
): Promise<{ image: ImageInput; imageId: string; turnId?: string; conversationId?: string } | undefined> {
  try {
    const image = await ctx.api.image(actor, imageId);
    return {
      image: { id: image.id },
      imageId: image.id,
      ...(image.turn === null ? {} : { turnId: image.turn.id, conversationId: image.turn.conversation.id }),
    };
  } catch (error) {
    if (error instanceof ApiUserError && error.code === 'NOT_FOUND') return undefined;
    throw error;
  }
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}
