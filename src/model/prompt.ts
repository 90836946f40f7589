import { InvalidRequestError } from './errors.ts';
import { findScale, type Manifest } from './manifest.ts';
import type { TextTokenizer } from './tokenizer.ts';

/** An image as TA-Tok codes (`0…K-1`, row-major over the pooled grid) and the scale they were made at. */
export interface ImageTokens {
  tokens: number[];
  scale: number;
}

/**
 * One earlier turn of a conversation, rendered into the prompt as it was asked, with images as their stored tokens.
 *
 * A user turn with an image and text uses the template of its `task` (defaults to `understand`; `edit` for an
 * edit instruction); a user turn with text only uses the `generate` template when `task` is `generate`, otherwise the
 * text as it is; an image alone is the image template. An assistant turn is its text, then (for an image answer)
 * `imageAnswerPrefix`, the image ids and `<im_end>`, as the model wrote it.
 */
export interface Turn {
  role: 'user' | 'assistant';
  text?: string;
  image?: ImageTokens;
  /** The request the user turn made, which picks its template. Defaults as described above. */
  task?: Task;
}

export type Task = 'understand' | 'generate' | 'edit';

/** The current request, before its answer. */
export type PromptRequest =
  | { task: 'understand'; image?: ImageTokens; prompt: string }
  | { task: 'generate'; prompt: string; scale: number }
  | { task: 'edit'; image: ImageTokens; prompt: string; scale: number };

type Part = { text: string; fromUser: boolean } | { ids: number[] };

/**
 * Builds LLM input ids from the manifest's chat format and templates. Text is gathered into runs and each run is
 * encoded as a whole (as the reference tokenises the formatted string), while image tokens are spliced as ids
 * `imageBase + code` and never pass through the tokenizer. `{k}` is `scale - 1`.
 */
export class PromptBuilder {
  constructor(
    readonly manifest: Manifest,
    readonly tokenizer: TextTokenizer,
  ) {}

  /** Checks image tokens against the bundle: a known scale, the scale's token count, codes in `[0, K)`. */
  checkImageTokens(image: ImageTokens, what = 'image'): void {
    const info = findScale(this.manifest, image.scale);
    if (info === undefined) {
      throw new InvalidRequestError(
        `${what}.scale must be one of ${this.manifest.scales.map((s) => s.scale).join(', ')}, not ${image.scale}`,
      );
    }
    if (!Array.isArray(image.tokens) || image.tokens.length !== info.tokens) {
      throw new InvalidRequestError(
        `${what}.tokens must hold ${info.tokens} tokens at scale ${image.scale}, found ${image.tokens?.length}`,
      );
    }
    const k = this.manifest.tokens.imageCount;
    const bad = image.tokens.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= k);
    if (bad >= 0) {
      throw new InvalidRequestError(`${what}.tokens[${bad}] must be an integer in [0, ${k}), found ${image.tokens[bad]}`);
    }
  }

  /** LLM input ids for `request` after `history`, ending with the assistant turn start (and image prefix). */
  build(request: PromptRequest, history: readonly Turn[] = []): number[] {
    const { chat } = this.manifest;
    const parts: Part[] = [];
    const turn = (role: string, body: Part[]) => {
      parts.push({ text: chat.turnStart.replaceAll('{role}', role), fromUser: false }, ...body);
      parts.push({ text: chat.turnEnd, fromUser: false });
    };
    if (chat.system !== null) turn('system', [{ text: chat.system, fromUser: false }]);
    history.forEach((t, i) => {
      const where = `history[${i}]`;
      if (t.role === 'user') {
        turn('user', this.#userTurn(t.task ?? (t.image === undefined ? undefined : 'understand'), t.text, t.image, where));
      } else if (t.role === 'assistant') {
        const body: Part[] = t.text === undefined ? [] : [{ text: t.text, fromUser: true }];
        if (t.image !== undefined) body.push(...this.#imageAnswer(t.image, `${where}.image`));
        turn('assistant', body);
      } else {
        throw new InvalidRequestError(`${where}.role must be "user" or "assistant"`);
      }
    });
    const image = request.task === 'generate' ? undefined : request.image;
    turn('user', this.#userTurn(request.task, request.prompt, image, 'request'));
    parts.push({ text: chat.turnStart.replaceAll('{role}', 'assistant'), fromUser: false });
    if (request.task !== 'understand') parts.push(...this.#answerPrefix(request.scale));
    return this.#encode(parts);
  }

  #userTurn(task: Task | undefined, text: string | undefined, image: ImageTokens | undefined, where: string): Part[] {
    const { templates } = this.manifest;
    const prompt: Part[] = text === undefined ? [] : [{ text, fromUser: true }];
    if (image === undefined) {
      return task === 'generate' ? this.#render(templates.generate, { prompt }) : prompt;
    }
    const imageParts = this.#image(image, `${where}.image`);
    if (text === undefined) return imageParts;
    return this.#render(task === 'edit' ? templates.edit : templates.understand, { prompt, image: imageParts });
  }

  #imageAnswer(image: ImageTokens, what: string): Part[] {
    this.checkImageTokens(image, what);
    return [...this.#answerPrefix(image.scale), { ids: this.#imageIds(image) }, { ids: [this.manifest.tokens.imEnd] }];
  }

  #image(image: ImageTokens, what: string): Part[] {
    this.checkImageTokens(image, what);
    return this.#render(this.manifest.templates.image, {
      tokens: [{ ids: this.#imageIds(image) }],
      k: [{ text: String(image.scale - 1), fromUser: false }],
    });
  }

  #answerPrefix(scale: number): Part[] {
    return this.#render(this.manifest.templates.imageAnswerPrefix, { k: [{ text: String(scale - 1), fromUser: false }] });
  }

  #imageIds(image: ImageTokens): number[] {
    const base = this.manifest.tokens.imageBase;
    return image.tokens.map((t) => base + t);
  }

  #render(template: string, values: Partial<Record<'prompt' | 'image' | 'tokens' | 'k', Part[]>>): Part[] {
    const out: Part[] = [];
    for (const piece of template.split(/(\{(?:prompt|image|tokens|k)\})/)) {
      const name = /^\{(prompt|image|tokens|k)\}$/.exec(piece)?.[1] as keyof typeof values | undefined;
      if (name === undefined) {
        if (piece.length > 0) out.push({ text: piece, fromUser: false });
      } else {
        out.push(...(values[name] ?? []));
      }
    }
    return out;
  }

  #encode(parts: Part[]): number[] {
    const ids: number[] = [];
    let run = '';
    const flush = () => {
      if (run.length > 0) ids.push(...this.tokenizer.encode(run));
      run = '';
    };
    for (const part of parts) {
      if ('ids' in part) {
        flush();
        ids.push(...part.ids);
      } else {
        if (part.fromUser) this.#refuseAddedTokens(part.text);
        run += part.text;
      }
    }
    flush();
    return ids;
  }

  /**
   * User text is tokenised together with the template around it, so an added token spelled inside it (say
   * `<|im_end|>`) would become a real control token and could forge turns or image tokens: such text is refused.
   */
  #refuseAddedTokens(text: string): void {
    const spelledImage = /<I\d+>/.exec(text);
    if (spelledImage !== null) {
      throw new InvalidRequestError(`the text contains the reserved token ${JSON.stringify(spelledImage[0])}`);
    }
    for (const content of this.#addedContents()) {
      if (text.includes(content)) {
        throw new InvalidRequestError(`the text contains the reserved token ${JSON.stringify(content)}`);
      }
    }
  }

  #added: string[] | undefined;
  #addedContents(): string[] {
    // Image tokens (<I0>…) are left out, as K can be 65536: a regular expression catches them instead.
    this.#added ??= this.tokenizer.addedTokenContents().filter((c) => !/^<I\d+>$/.test(c));
    return this.#added;
  }
}
