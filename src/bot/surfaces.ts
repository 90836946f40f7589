/**
 * Where a request's progress and result appear. An interaction's reply is edited through its webhook, which Discord
 * honours for 15 minutes; after 14 the surface moves to a plain channel message it keeps editing. Messages people
 * send (replies, mentions) get a bot message in the channel or thread, edited in place.
 */
import type { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, Message, RepliableInteraction, SendableChannels } from 'discord.js';

export interface SurfacePayload {
  content: string;
  files?: AttachmentBuilder[];
  components?: ActionRowBuilder<ButtonBuilder>[];
}

export interface Surface {
  show(payload: SurfacePayload): Promise<void>;
}

/** Interaction tokens last 15 minutes; edits after this many ms go to a channel message instead. */
export const INTERACTION_EDIT_WINDOW_MS = 14 * 60_000;

export class InteractionSurface implements Surface {
  #fallback: Message | undefined;

  constructor(
    private readonly interaction: RepliableInteraction,
    private readonly now: () => number = Date.now,
  ) {}

  async show(payload: SurfacePayload): Promise<void> {
    const body = { content: payload.content, files: payload.files ?? [], components: payload.components ?? [], allowedMentions: { parse: [] } };
    const expired = this.now() - this.interaction.createdTimestamp > INTERACTION_EDIT_WINDOW_MS;
    const channel = this.interaction.channel;
    if (!expired || this.interaction.ephemeral === true || channel === null || !channel.isSendable()) {
      await this.interaction.editReply(body);
      return;
    }
    if (this.#fallback === undefined) this.#fallback = await channel.send(body);
    else await this.#fallback.edit(body);
  }
}

export class ChannelSurface implements Surface {
  #message: Message | undefined;

  constructor(
    private readonly channel: SendableChannels,
    /** The person's message the first bot message replies to. */
    private readonly replyTo?: Message,
  ) {}

  get message(): Message | undefined {
    return this.#message;
  }

  async show(payload: SurfacePayload): Promise<void> {
    const body = { content: payload.content, files: payload.files ?? [], components: payload.components ?? [], allowedMentions: { parse: [] } };
    if (this.#message !== undefined) {
      this.#message = await this.#message.edit(body);
    } else if (this.replyTo !== undefined && this.replyTo.channelId === this.channel.id) {
      this.#message = await this.replyTo.reply(body);
    } else {
      this.#message = await this.channel.send(body);
    }
  }
}
