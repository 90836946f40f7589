/**
 * Running a turn in Discord: start it (the API answers at once with the job), show its progress by editing the
 * surface (stage and percent, throttled), then show the result: the image as an upscaled, pixel-exact attachment
 * named after its id, or the answer's text, with the prompt, the seed, a link to the web page and the buttons.
 */
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle } from 'discord.js';
import { type Actor, ApiUserError, type JobStage, type JobState, type StartedTurn, type TurnResult } from './api-client.ts';
import { customId, imageFileName } from './components/custom-ids.ts';
import type { BotContext } from './context.ts';
import { upscalePng } from './render.ts';
import type { Surface, SurfacePayload } from './surfaces.ts';

const STAGES: Record<JobStage, string> = {
  QUEUED: 'waiting in the queue',
  ENCODE: 'reading the image',
  PREFILL: 'reading the prompt',
  DECODE: 'writing tokens',
  DETOKENIZE: 'de-tokenizing',
  VQ_DECODE: 'painting pixels',
  DONE: 'finishing',
};

/** `⏳ Generating "a red circle" · writing tokens 40% ▰▰▰▰▱▱▱▱▱▱` */
export function progressLine(label: string, job: JobState): string {
  const ratio = job.total > 0 ? Math.min(1, job.done / job.total) : 0;
  const percent = Math.round(ratio * 100);
  const filled = Math.round(ratio * 10);
  const bar = job.total > 0 ? ` ${percent}% ${'▰'.repeat(filled)}${'▱'.repeat(10 - filled)}` : '';
  return `⏳ ${label} · ${STAGES[job.stage] ?? job.stage.toLowerCase()}${bar}`;
}

/** The web page of a turn: its conversation in the web page's chat (hash route `#/c/<id>`, web/src/router.ts). */
export function turnPageUrl(publicUrl: string, turn: Pick<TurnResult, 'id' | 'conversation'>): string {
  return `${publicUrl.replace(/\/+$/, '')}/#/c/${encodeURIComponent(turn.conversation.id)}`;
}

/**
 * Starts a turn with `start`, shows its progress on the surface and finally its result. Resolves with the finished
 * turn; throws ApiUserError when the job fails or is cancelled (after the surface shows it).
 */
export async function runTurn(
  ctx: BotContext,
  actor: Actor,
  surface: Surface,
  label: string,
  start: () => Promise<StartedTurn>,
): Promise<TurnResult> {
  const started = await start();
  const cancelRow = new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(customId('cancel', started.job.id)).setLabel('Cancel').setStyle(ButtonStyle.Secondary),
  );
  const progress = new ProgressEditor(ctx.progressIntervalMs, (job) => surface.show({ content: progressLine(label, job), components: [cancelRow] }));
  progress.push(started.job);
  const final = await ctx.api.follow(actor, started.job.id, (job) => progress.push(job));
  await progress.settle();
  if (final.status !== 'SUCCEEDED') {
    const code = final.status === 'CANCELLED' ? 'CANCELLED' : (final.error?.code ?? 'MODEL_FAILED');
    await surface.show({ content: `⏹️ ${label} · ${final.status === 'CANCELLED' ? 'cancelled' : 'failed'}`, components: [] });
    throw new ApiUserError(code, final.error?.message ?? final.status.toLowerCase());
  }
  const turn = await ctx.api.turn(actor, started.turnId);
  await surface.show(await resultPayload(ctx, actor, turn));
  return turn;
}

/** The message of a finished turn. */
export async function resultPayload(ctx: BotContext, actor: Actor, turn: TurnResult): Promise<SurfacePayload> {
  const link = turnPageUrl(ctx.publicUrl, turn);
  const by = `<@${actor.discordId}>`;
  const guidance = turn.settings.promptGuidance;
  const seed = `seed \`${turn.settings.seed}\`${guidance === null ? '' : ` · guidance ${guidance}`}${turn.settings.selfCheck === true ? ' · self-check' : ''}`;
  if (turn.image !== null) {
    const png = await ctx.api.download(turn.image.url);
    const shown = await upscalePng(png);
    const verb = turn.task === 'EDIT' ? '✏️' : '🎨';
    const lines = [
      `${verb} **${escapeMarkdown(clip(turn.prompt, 300))}**`,
      `${seed} · scale ${turn.image.scale} (${turn.image.grid}×${turn.image.grid} tokens) · ${turn.image.width}×${turn.image.height} px shown at ${shown.factor}× · by ${by}`,
      `<${link}>`,
    ];
    return {
      content: lines.join('\n'),
      files: [new AttachmentBuilder(shown.png, { name: imageFileName(turn.image.id), description: turn.prompt.slice(0, 1000) })],
      components: [resultButtons(turn, turn.image.id, true)],
    };
  }
  const answer = turn.text ?? '';
  const lines = [`💬 **${escapeMarkdown(clip(turn.prompt, 300))}**`, clip(answer, 1500), `${seed} · by ${by}`, `<${link}>`];
  return { content: lines.join('\n'), components: turn.inputImage === null ? [] : [resultButtons(turn, turn.inputImage.id, false)] };
}

function resultButtons(turn: TurnResult, imageId: string, isImage: boolean): ActionRowBuilder<ButtonBuilder> {
  const row = new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(customId('reroll', turn.id)).setLabel('Reroll').setEmoji('🎲').setStyle(ButtonStyle.Secondary),
    new ButtonBuilder().setCustomId(customId('edit', imageId)).setLabel('Edit').setEmoji('✏️').setStyle(ButtonStyle.Secondary),
    new ButtonBuilder().setCustomId(customId('describe', imageId)).setLabel('Describe').setEmoji('💬').setStyle(ButtonStyle.Secondary),
  );
  if (isImage) {
    row.addComponents(new ButtonBuilder().setCustomId(customId('tokens', imageId)).setLabel('Show tokens').setEmoji('🔢').setStyle(ButtonStyle.Secondary));
  }
  return row;
}

/** Shows job states no more often than every `intervalMs`, one edit at a time, always the latest state. */
class ProgressEditor {
  #latest: JobState | undefined;
  #shownStage: JobStage | undefined;
  #lastAt = 0;
  #running: Promise<void> = Promise.resolve();
  #scheduled = false;

  constructor(
    private readonly intervalMs: number,
    private readonly show: (job: JobState) => Promise<void>,
  ) {}

  push(job: JobState): void {
    this.#latest = job;
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#running = this.#running.then(async () => {
      const wait = job.stage !== this.#shownStage ? 0 : Math.max(0, this.#lastAt + this.intervalMs - Date.now());
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.#scheduled = false;
      const latest = this.#latest as JobState;
      if (latest.status === 'SUCCEEDED' || latest.status === 'FAILED' || latest.status === 'CANCELLED') return;
      this.#shownStage = latest.stage;
      this.#lastAt = Date.now();
      await this.show(latest).catch(() => undefined);
    });
  }

  /** Waits for the edit in flight. */
  settle(): Promise<void> {
    return this.#running;
  }
}

export function escapeMarkdown(text: string): string {
  return text.replace(/([\\*_~`|>])/g, '\\$1').replace(/\n/g, ' ');
}

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
