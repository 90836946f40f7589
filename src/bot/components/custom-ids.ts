/**
 * Custom ids of buttons and modals: `<kind>:<arg>[:<arg>]`, at most 100 characters (Discord's limit). They carry the
 * API ids the handler needs (a turn, an image, a job), so that clicks work after a restart of the bot.
 */
export type ComponentKind =
  /** Run a turn again with a new seed: `reroll:<turnId>`. */
  | 'reroll'
  /** Open the edit modal for an image: `edit:<imageId>`. */
  | 'edit'
  /** The edit modal's submission: `editmodal:<imageId>`. */
  | 'editmodal'
  /** Understand an image from its stored tokens: `describe:<imageId>`. */
  | 'describe'
  /** The image's token grid: `tokens:<imageId>`. */
  | 'tokens'
  /** Stop a running job: `cancel:<jobId>`. */
  | 'cancel'
  /** A page of /history: `history:<pageKey>`. */
  | 'history'
  /** The "Edit image" context menu's modal: `editmessage:<channelId>:<messageId>`. */
  | 'editmessage';

const KINDS: ReadonlySet<string> = new Set<ComponentKind>(['reroll', 'edit', 'editmodal', 'describe', 'tokens', 'cancel', 'history', 'editmessage']);

export function customId(kind: ComponentKind, ...args: string[]): string {
  const id = [kind, ...args].join(':');
  if (id.length > 100) throw new Error(`custom id longer than 100 characters: ${id}`);
  return id;
}

export function parseCustomId(id: string): { kind: ComponentKind; args: string[] } | undefined {
  const [kind, ...args] = id.split(':');
  return kind !== undefined && KINDS.has(kind) ? { kind: kind as ComponentKind, args } : undefined;
}

/** Result attachments are named after their image, so that replies and context menus find the stored tokens. */
export function imageFileName(imageId: string): string {
  return `dialect-${imageId}.png`;
}

export function imageIdFromFileName(name: string): string | undefined {
  return /^dialect-([0-9a-f-]{36})\.png$/i.exec(name)?.[1];
}
