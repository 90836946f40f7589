import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';
import { BundleError } from './errors.ts';

/**
 * The bundle's HuggingFace tokenizer (tokenizer.json only, read from disk; never the network). Encoding adds no
 * BOS/EOS: prompts are built from the manifest's templates, which spell every special token out.
 */
export class TextTokenizer {
  readonly #tokenizer: Tokenizer;
  /** Ids the text decoder drops: added special tokens and the whole image-token range. */
  readonly #hidden: (id: number) => boolean;

  private constructor(tokenizer: Tokenizer, hidden: (id: number) => boolean) {
    this.#tokenizer = tokenizer;
    this.#hidden = hidden;
  }

  /**
   * Parses a tokenizer.json document. `hidden` says which ids {@link decode} skips besides the tokenizer's own
   * special tokens (the runtime passes the image-token range and the manifest's special ids).
   */
  static fromJson(json: unknown, hidden: (id: number) => boolean = () => false): TextTokenizer {
    // clean_up_tokenization_spaces: false, as Qwen2's tokenizer_config: decoding must not rewrite " ." into ".".
    return new TextTokenizer(new Tokenizer(json as object, { clean_up_tokenization_spaces: false }), hidden);
  }

  static async fromFile(path: string, hidden?: (id: number) => boolean): Promise<TextTokenizer> {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      throw new BundleError(`cannot read the tokenizer ${path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      return TextTokenizer.fromJson(json, hidden);
    } catch (error) {
      throw new BundleError(`the tokenizer ${path} is not a usable tokenizer.json: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** Token ids of `text`, with added tokens (such as `<|im_start|>`) recognised and no BOS/EOS added. */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.#tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** Text of `ids`, skipping special tokens and image tokens. */
  decode(ids: readonly number[]): string {
    const visible = ids.filter((id) => !this.#hidden(id));
    return this.#tokenizer.decode(visible, { skip_special_tokens: true });
  }

  /** Added tokens by id (content and whether special), for checking the manifest's ids. */
  addedTokens(): Map<number, { content: string; special: boolean }> {
    const out = new Map<number, { content: string; special: boolean }>();
    for (const [id, token] of this.#tokenizer.get_added_tokens_decoder()) {
      out.set(id, { content: token.content, special: token.special });
    }
    return out;
  }

  /** Every added token's text, so that prompts can refuse user text that would smuggle one in. */
  addedTokenContents(): string[] {
    return [...this.#tokenizer.get_added_tokens_decoder().values()].map((t) => t.content);
  }

  /** The token string of one id, or undefined when the tokenizer has no such id. */
  decodeRaw(id: number): string | undefined {
    return this.#tokenizer.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.#tokenizer.token_to_id(token);
  }
}
