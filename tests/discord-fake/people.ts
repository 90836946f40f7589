/**
 * The people side of the fake Discord: a `Person` runs slash commands, message context menu commands, clicks
 * buttons, submits modals and sends messages, each delivered to the bot over the gateway exactly as Discord shapes
 * them; an `InteractionHandle` awaits what the bot answered.
 */
import type { CallbackRecord, FakeAttachment, FakeChannel, FakeDiscord, FakeInteraction, FakeMessage, FakeUser } from './index.ts';

type OptionValue = string | number | boolean | FakeAttachment;

const OPTION_TYPES = { SUB_COMMAND: 1, STRING: 3, INTEGER: 4, BOOLEAN: 5, NUMBER: 10, ATTACHMENT: 11 } as const;

export class Person {
  constructor(
    readonly fake: FakeDiscord,
    readonly user: FakeUser,
  ) {}

  get id(): string {
    return this.user.id;
  }

  /** A slash command, checked against the registered commands (name, option names, types and required ones). */
  slash(channel: FakeChannel, name: string, options: Record<string, OptionValue> = {}): InteractionHandle {
    const command = this.#command(channel, name, 1);
    const declared = (command.options as { name: string; type: number; required?: boolean }[] | undefined) ?? [];
    const resolvedAttachments: Record<string, FakeAttachment> = {};
    const list = Object.entries(options).map(([optionName, value]) => {
      const option = declared.find((o) => o.name === optionName);
      if (option === undefined) throw new Error(`/${name} has no option "${optionName}"`);
      if (option.type === OPTION_TYPES.ATTACHMENT) {
        const attachment = value as FakeAttachment;
        resolvedAttachments[attachment.id] = attachment;
        return { name: optionName, type: option.type, value: attachment.id };
      }
      return { name: optionName, type: option.type, value };
    });
    for (const option of declared) {
      if (option.required === true && !(option.name in options)) throw new Error(`/${name} needs option "${option.name}"`);
    }
    return this.#send(channel, 2, {
      id: command.id,
      name,
      type: 1,
      options: list,
      ...(Object.keys(resolvedAttachments).length > 0 ? { resolved: { attachments: resolvedAttachments } } : {}),
    });
  }

  /** A message context menu command ("Apps → name") on a message. */
  messageCommand(channel: FakeChannel, name: string, target: FakeMessage): InteractionHandle {
    const command = this.#command(channel, name, 3);
    return this.#send(channel, 2, {
      id: command.id,
      name,
      type: 3,
      target_id: target.id,
      resolved: { messages: { [target.id]: this.fake.publicMessage(target) } },
    });
  }

  /** Clicks a button of a message, found by its custom id (or a predicate on it). */
  click(message: FakeMessage, customId: string | ((id: string) => boolean)): InteractionHandle {
    const current = this.fake.messages.get(message.id) ?? message;
    const buttons = current.components.flatMap((row) => (row.components as { type: number; custom_id?: string; disabled?: boolean }[]) ?? []);
    const matches = (id: string | undefined) => id !== undefined && (typeof customId === 'string' ? id === customId : customId(id));
    const button = buttons.find((b) => b.type === 2 && matches(b.custom_id));
    if (button === undefined) throw new Error(`no button ${String(customId)} on message ${current.id}: ${buttons.map((b) => b.custom_id).join(', ')}`);
    if (button.disabled === true) throw new Error(`button ${button.custom_id} is disabled`);
    const channel = this.fake.channels.get(current.channel_id) as FakeChannel;
    return this.#send(channel, 3, { custom_id: button.custom_id, component_type: 2 }, { message: this.fake.publicMessage(current) });
  }

  /** Submits the modal the bot showed in answer to `shown`, filling its text inputs by custom id. */
  submitModal(shown: InteractionHandle, fields: Record<string, string>): InteractionHandle {
    const modal = shown.interaction.modal;
    if (modal === undefined) throw new Error('the bot showed no modal');
    const rows = (modal.components as { type: number; components?: { type: number; custom_id: string }[]; component?: { type: number; custom_id: string } }[]) ?? [];
    const inputs = rows.flatMap((row) => row.components ?? (row.component === undefined ? [] : [row.component])).filter((c) => c.type === 4);
    for (const key of Object.keys(fields)) {
      if (!inputs.some((input) => input.custom_id === key)) throw new Error(`the modal has no text input "${key}"`);
    }
    const channel = this.fake.channels.get(shown.interaction.channelId) as FakeChannel;
    const message = shown.interaction.payload.message as FakeMessage | undefined;
    return this.#send(
      channel,
      5,
      {
        custom_id: modal.custom_id,
        // Answered in the shape the modal was built with: labels (type 18) or the older action rows (type 1).
        components: rows.flatMap((row) => {
          const input = row.type === 18 ? row.component : row.components?.[0];
          if (input === undefined || input.type !== 4) return [];
          const value = { type: 4, custom_id: input.custom_id, value: fields[input.custom_id] ?? '' };
          return [row.type === 18 ? { type: 18, component: value } : { type: 1, components: [value] }];
        }),
      },
      message === undefined ? {} : { message },
    );
  }

  /** Sends a message (optionally a reply, optionally with attachments uploaded to the fake CDN). */
  say(channel: FakeChannel, content: string, options: { replyTo?: FakeMessage; attachments?: FakeAttachment[] } = {}): FakeMessage {
    return this.fake.newMessage(
      channel,
      this.user,
      { content, ...(options.replyTo === undefined ? {} : { message_reference: { message_id: options.replyTo.id } }) },
      options.attachments ?? [],
    );
  }

  #command(channel: FakeChannel, name: string, type: number): Record<string, unknown> {
    const registered = [...(this.fake.commands.get('global') ?? []), ...(this.fake.commands.get(`guild:${channel.guild_id}`) ?? [])];
    const command = registered.find((c) => c.name === name && (c.type ?? 1) === type);
    if (command === undefined) throw new Error(`no registered command "${name}" of type ${type}`);
    return command;
  }

  #send(channel: FakeChannel, type: number, data: Record<string, unknown>, extra: Record<string, unknown> = {}): InteractionHandle {
    const fake = this.fake;
    const id = fake.snowflake();
    const token = `interaction-token-${id}`;
    const payload = {
      id,
      application_id: fake.applicationId,
      type,
      token,
      version: 1,
      data,
      guild_id: channel.guild_id,
      channel_id: channel.id,
      channel: { ...channel },
      member: { user: this.user, roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0, permissions: '1071698660929' },
      app_permissions: '1071698660929',
      locale: 'en-US',
      guild_locale: 'en-US',
      entitlements: [],
      authorizing_integration_owners: { '0': channel.guild_id },
      context: 0,
      attachment_size_limit: 10 * 1024 * 1024,
      ...extra,
    };
    const interaction: FakeInteraction = {
      id,
      token,
      type,
      user: this.user,
      channelId: channel.id,
      sentAt: Date.now(),
      payload,
      callbacks: [],
      originalId: undefined,
      followupIds: [],
      modal: undefined,
    };
    fake.sendInteraction(interaction);
    return new InteractionHandle(fake, interaction);
  }
}

/** What the bot did with one interaction. */
export class InteractionHandle {
  constructor(
    readonly fake: FakeDiscord,
    readonly interaction: FakeInteraction,
  ) {}

  /** The first callback (the acknowledgement). */
  acknowledged(timeoutMs = 5000): Promise<CallbackRecord> {
    return this.fake.waitFor(() => this.interaction.callbacks[0], timeoutMs, `an acknowledgement of interaction ${this.interaction.id}`);
  }

  /** The response message as it is now. */
  get original(): FakeMessage | undefined {
    const id = this.interaction.originalId;
    return id === undefined ? undefined : this.fake.messages.get(id);
  }

  get followups(): FakeMessage[] {
    return this.interaction.followupIds.map((id) => this.fake.messages.get(id) as FakeMessage);
  }

  /** The response or a follow-up (not deleted) that satisfies the predicate. */
  waitForMessage(predicate: (message: FakeMessage) => boolean, timeoutMs = 20_000): Promise<FakeMessage> {
    return this.fake.waitFor(
      () => [this.original, ...this.followups].find((m) => m !== undefined && m.deleted !== true && predicate(m)),
      timeoutMs,
      `a message answering interaction ${this.interaction.id}`,
    );
  }

  /** The response once it is no longer the "thinking…" placeholder and satisfies the predicate. */
  waitForOriginal(predicate: (message: FakeMessage) => boolean = () => true, timeoutMs = 20_000): Promise<FakeMessage> {
    return this.fake.waitFor(
      () => {
        const message = this.original;
        return message !== undefined && (message.flags & 128) === 0 && predicate(message) ? message : undefined;
      },
      timeoutMs,
      `the response to interaction ${this.interaction.id}`,
    );
  }

  /** A modal shown by the bot. */
  modal(timeoutMs = 5000): Promise<Record<string, unknown>> {
    return this.fake.waitFor(() => this.interaction.modal, timeoutMs, 'a modal');
  }
}

/** Custom ids of a message's buttons, row by row flattened. */
export function buttonIds(message: FakeMessage): string[] {
  return message.components.flatMap((row) => ((row.components as { custom_id?: string; url?: string }[]) ?? []).map((b) => b.custom_id ?? b.url ?? ''));
}
