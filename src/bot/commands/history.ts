/**
 * `/history`: the person's own recent conversations, newest first, as an ephemeral list with links, five a page,
 * with Previous/Next buttons. The API's cursors are longer than a custom id allows, so a page's cursor is kept in
 * memory under a short key (for an hour); a click on an expired key starts again from the first page.
 */
import { randomBytes } from 'node:crypto';
import { ActionRowBuilder, ButtonBuilder, ButtonStyle, InteractionContextType, SlashCommandBuilder } from 'discord.js';
import type { Actor, ConversationPage, Task } from '../api-client.ts';
import { customId } from '../components/custom-ids.ts';
import type { BotContext } from '../context.ts';
import { clip, escapeMarkdown, turnPageUrl } from '../results.ts';
import type { SurfacePayload } from '../surfaces.ts';
import { actorOf, type SlashCommand } from './types.ts';

export const HISTORY_PAGE_SIZE = 5;
const SESSION_TTL_MS = 60 * 60_000;
const ICONS: Record<Task, string> = { GENERATE: '🎨', EDIT: '✏️', UNDERSTAND: '💬' };

/** Cursors of the pages a person has walked through, per /history invocation. */
export class HistoryPages {
  readonly #sessions = new Map<string, { userId: string; cursors: (string | undefined)[]; at: number }>();

  open(userId: string): string {
    const now = Date.now();
    for (const [key, session] of this.#sessions) if (now - session.at > SESSION_TTL_MS) this.#sessions.delete(key);
    const key = randomBytes(6).toString('base64url');
    this.#sessions.set(key, { userId, cursors: [undefined], at: now });
    return key;
  }

  /** The cursor of page `index` of a session, or null when the session is unknown (or someone else's). */
  cursor(key: string, userId: string, index: number): { cursor: string | undefined } | null {
    const session = this.#sessions.get(key);
    if (session === undefined || session.userId !== userId || index >= session.cursors.length) return null;
    session.at = Date.now();
    return { cursor: session.cursors[index] };
  }

  remember(key: string, index: number, endCursor: string | null): void {
    const session = this.#sessions.get(key);
    if (session !== undefined && endCursor !== null) session.cursors[index + 1] = endCursor;
  }
}

/** Page `index` of the session `key` (which must know its cursor). */
export async function historyPage(ctx: BotContext, actor: Actor, key: string, index: number, cursor: string | undefined, note = ''): Promise<SurfacePayload> {
  const page = await ctx.api.conversations(actor, HISTORY_PAGE_SIZE, cursor);
  ctx.history.remember(key, index, page.endCursor);
  return renderHistory(ctx, page, key, index, note);
}

function renderHistory(ctx: BotContext, page: ConversationPage, key: string, index: number, note: string): SurfacePayload {
  if (page.items.length === 0 && index === 0) {
    return { content: `${note}📭 Nothing yet. Try \`/imagine\`, \`/describe\` or \`/edit\`.`, components: [] };
  }
  const lines = [`${note}🗂️ **Your recent work** · page ${index + 1}`];
  for (const conversation of page.items) {
    const last = conversation.turns.at(-1);
    const when = `<t:${Math.floor(Date.parse(conversation.updatedAt) / 1000)}:R>`;
    const turns = `${conversation.turns.length} turn${conversation.turns.length === 1 ? '' : 's'}`;
    lines.push(`**${escapeMarkdown(clip(conversation.title, 80))}** · ${turns} · ${when}`);
    if (last !== undefined) {
      const answer = last.text === null ? '' : ` → ${escapeMarkdown(clip(last.text, 120))}`;
      lines.push(`${ICONS[last.task]} ${escapeMarkdown(clip(last.prompt, 100))}${answer} · <${turnPageUrl(ctx.publicUrl, { id: last.id, conversation })}>`);
    }
  }
  const row = new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder()
      .setCustomId(customId('history', key, String(Math.max(0, index - 1))))
      .setLabel('Previous')
      .setStyle(ButtonStyle.Secondary)
      .setDisabled(index === 0),
    new ButtonBuilder()
      .setCustomId(customId('history', key, String(index + 1)))
      .setLabel('Next')
      .setStyle(ButtonStyle.Secondary)
      .setDisabled(!page.hasNextPage),
  );
  return { content: clip(lines.join('\n'), 2000), components: [row] };
}

export const history: SlashCommand = {
  kind: 'slash',
  data: new SlashCommandBuilder().setContexts(InteractionContextType.Guild).setName('history').setDescription('Your own recent work with Dialect (only you see it)').toJSON(),
  ack: 'defer-ephemeral',
  async run(interaction, ctx) {
    const actor = actorOf(interaction.user);
    const key = ctx.history.open(interaction.user.id);
    const page = await historyPage(ctx, actor, key, 0, undefined);
    await interaction.editReply({ content: page.content, components: page.components ?? [] });
  },
};
