/**
 * The chat: the person's latest conversations, one conversation's turns (text and images, with live progress,
 * Cancel and Reroll), and the composer (Prompt, an attached, dropped or picked image, Seed, Scale, and
 * Generate / Ask / Edit).
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import {
  CONVERSATION,
  type Conversation,
  CONVERSATIONS,
  type Connection,
  DELETE_CONVERSATION,
  EDIT,
  GENERATE,
  gql,
  type ImageRef,
  RENAME,
  REROLL,
  type Session,
  type Task,
  type Turn,
  type TurnPayload,
  UNDERSTAND,
} from '../api.ts';
import { ErrorNote, JobProgress, Pixels, When } from '../components/common.tsx';
import { FINISHED, getJob, onJobFinished, useJob, watchJob } from '../jobs.ts';
import { href, navigate } from '../router.ts';

type Picked =
  | { kind: 'upload'; base64: string; previewUrl: string; name: string }
  | { kind: 'stored'; id: string; url: string; name: string };

const TASK_NAMES: Record<Task, string> = { UNDERSTAND: 'Ask', GENERATE: 'Generate', EDIT: 'Edit' };

export function ChatPage({ conversationId, imageId, session }: { conversationId: string | undefined; imageId: string | undefined; session: Session }) {
  const [conversation, setConversation] = useState<(Conversation & { turns: Turn[] }) | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [picked, setPicked] = useState<Picked | null>(null);
  const composer = useRef<HTMLTextAreaElement>(null);

  const reload = useCallback(async () => {
    if (conversationId === undefined) return;
    try {
      const data = await gql<{ conversation: (Conversation & { turns: Turn[] }) | null }>(CONVERSATION, { id: conversationId });
      if (data.conversation === null) {
        setMissing(true);
        return;
      }
      setConversation(data.conversation);
      let stale = false;
      for (const turn of data.conversation.turns) {
        if (turn.job === null || FINISHED.has(turn.status)) continue;
        // A job that finished between this read and an earlier event: read again shortly.
        if (FINISHED.has(getJob(turn.job.id)?.status ?? '')) stale = true;
        else watchJob(turn.job);
      }
      if (stale) setTimeout(() => void reloadRef.current(), 150);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, [conversationId]);

  const reloadRef = useRef(reload);
  reloadRef.current = reload;
  useEffect(() => {
    void reload();
  }, [reload]);

  // A job of this conversation finished: read its turns again (the answer, the image, timings).
  const turnsRef = useRef<Turn[]>([]);
  turnsRef.current = conversation?.turns ?? [];
  useEffect(
    () =>
      onJobFinished((job) => {
        if (turnsRef.current.some((t) => t.job?.id === job.id)) void reload();
      }),
    [reload],
  );

  // `?image=<id>`: an image picked for editing from its page.
  useEffect(() => {
    if (imageId === undefined) return;
    gql<{ image: { id: string; url: string } | null }>(`query Picked($id: ID!) { image(id: $id) { id url } }`, { id: imageId })
      .then((data) => {
        if (data.image !== null) setPicked({ kind: 'stored', id: data.image.id, url: data.image.url, name: 'picked image' });
      })
      .catch(() => {});
  }, [imageId]);

  const pick = (image: ImageRef, name: string) => {
    setPicked({ kind: 'stored', id: image.id, url: image.url, name });
    composer.current?.focus();
  };
  const pickedId = picked?.kind === 'stored' ? picked.id : undefined;

  const reroll = async (turn: Turn) => {
    setError(null);
    try {
      const data = await gql<{ reroll: TurnPayload }>(REROLL, { input: { turnId: turn.id, wait: false } });
      const payload = data.reroll;
      if (payload.errors.length > 0) {
        setError(payload.errors.map((e) => e.message).join(' '));
        return;
      }
      if (payload.job !== null) watchJob(payload.job);
      await reload();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };

  // A new turn: bring it into view (the composer stays below it).
  const list = useRef<HTMLOListElement>(null);
  const count = conversation?.turns.length ?? 0;
  const seen = useRef(0);
  useEffect(() => {
    if (count > seen.current && seen.current > 0) list.current?.lastElementChild?.scrollIntoView({ block: 'nearest' });
    seen.current = count;
  }, [count]);

  const title = conversationId === undefined ? 'New conversation' : (conversation?.title ?? 'Conversation');
  return (
    <div class="chat">
      <ConversationList current={conversationId} />
      <section class="conversation" aria-labelledby="conversation-title">
        <div class="conversation-head">
          <h1 id="conversation-title">{title}</h1>
          {conversation !== null && (
            <ConversationActions
              conversation={conversation}
              onRenamed={(t) => setConversation({ ...conversation, title: t })}
              onError={setError}
            />
          )}
        </div>
        {missing && <ErrorNote>This conversation does not exist, or is not yours.</ErrorNote>}
        {conversationId === undefined && (
          <p class="muted">
            Type a prompt and press <strong>Generate</strong> for an image, or attach an image and press <strong>Ask</strong> to ask about
            it. Pick any image to <strong>Edit</strong> it with an instruction.
          </p>
        )}
        <ol class="turns" aria-label="Turns" ref={list}>
          {conversation?.turns.map((turn) => (
            <TurnView key={turn.id} turn={turn} onPick={pick} onReroll={reroll} pickedId={pickedId} />
          ))}
        </ol>
        {error !== null && <ErrorNote>{error}</ErrorNote>}
        <Composer
          session={session}
          conversationId={conversationId}
          picked={picked}
          setPicked={setPicked}
          textarea={composer}
          onStarted={async (payload) => {
            if (payload.job !== null) watchJob(payload.job);
            const id = payload.turn?.conversation.id;
            if (conversationId === undefined && id !== undefined) navigate(href.conversation(id));
            else await reload();
          }}
        />
      </section>
    </div>
  );
}

/** Rename (an inline form) and Delete (asks once more, in the page) of the open conversation. */
function ConversationActions({
  conversation,
  onRenamed,
  onError,
}: {
  conversation: Conversation;
  onRenamed: (title: string) => void;
  onError: (message: string | null) => void;
}) {
  const [mode, setMode] = useState<'idle' | 'rename' | 'delete'>('idle');
  const [title, setTitle] = useState(conversation.title);
  const fail = (e: unknown) => onError(e instanceof Error ? e.message : String(e));
  if (mode === 'rename') {
    return (
      <form
        class="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            const data = await gql<{ renameConversation: { conversation: Conversation | null; errors: { message: string }[] } }>(RENAME, {
              input: { id: conversation.id, title: title.trim() },
            });
            const result = data.renameConversation;
            if (result.errors.length > 0) onError(result.errors.map((x) => x.message).join(' '));
            else if (result.conversation !== null) {
              onRenamed(result.conversation.title);
              setMode('idle');
            }
          } catch (error) {
            fail(error);
          }
        }}
      >
        <label>
          Title <input value={title} required maxLength={200} onInput={(e) => setTitle(e.currentTarget.value)} ref={(el) => el?.focus()} />
        </label>
        <button type="submit">Save</button>
        <button type="button" class="secondary" onClick={() => setMode('idle')}>Keep the old title</button>
      </form>
    );
  }
  if (mode === 'delete') {
    return (
      <div class="inline-form" role="alert">
        <span>Delete this conversation, its turns and the images used nowhere else?</span>
        <button
          type="button"
          class="danger"
          onClick={async () => {
            try {
              const data = await gql<{ deleteConversation: { deletedId: string | null; errors: { message: string }[] } }>(DELETE_CONVERSATION, { id: conversation.id });
              if (data.deleteConversation.errors.length > 0) onError(data.deleteConversation.errors.map((x) => x.message).join(' '));
              else navigate(href.chat());
            } catch (error) {
              fail(error);
            }
          }}
        >
          Delete for good
        </button>
        <button type="button" class="secondary" onClick={() => setMode('idle')} ref={(el) => el?.focus()}>Keep it</button>
      </div>
    );
  }
  return (
    <div class="actions">
      <button type="button" onClick={() => setMode('rename')}>Rename</button>
      <button type="button" onClick={() => setMode('delete')}>Delete</button>
    </div>
  );
}

function ConversationList({ current }: { current: string | undefined }) {
  const [items, setItems] = useState<Conversation[] | null>(null);
  useEffect(() => {
    gql<{ conversations: Connection<Conversation> }>(CONVERSATIONS, { first: 15 })
      .then((data) => setItems(data.conversations.edges.map((e) => e.node)))
      .catch(() => setItems([]));
  }, [current]);
  return (
    <nav class="sidebar" aria-label="Conversations">
      <h2>Conversations</h2>
      <a class="button" href={href.chat()}>New conversation</a>
      <ul>
        {items?.map((c) => (
          <li key={c.id}>
            <a href={href.conversation(c.id)} aria-current={c.id === current ? 'page' : undefined}>
              {c.title}
            </a>
          </li>
        ))}
      </ul>
      <a href={href.history()}>All conversations</a>
    </nav>
  );
}

function TurnView({
  turn,
  onPick,
  onReroll,
  pickedId,
}: {
  turn: Turn;
  onPick: (image: ImageRef, name: string) => void;
  onReroll: (t: Turn) => void;
  pickedId: string | undefined;
}) {
  const picked = turn.image !== null && turn.image.id === pickedId;
  const live = useJob(turn.job?.id);
  const status = live !== undefined && FINISHED.has(live.status) && !FINISHED.has(turn.status) ? 'FINISHING' : turn.status;
  return (
    <li class="turn" data-turn-id={turn.id} data-status={turn.status} data-task={turn.task}>
      <div class="bubble mine">
        <span class="tag">{TASK_NAMES[turn.task]}</span> <span class="prompt">{turn.prompt}</span>
        {turn.inputImage !== null && (
          <>
            <a href={href.image(turn.inputImage.id)} class={`thumb${turn.inputImage.id === pickedId ? ' picked' : ''}`}>
              <Pixels image={turn.inputImage} alt={turn.task === 'EDIT' ? 'The image edited' : 'The image asked about'} size={64} />
            </a>
            <button
              type="button"
              class="small"
              aria-pressed={turn.inputImage.id === pickedId}
              onClick={() => onPick(turn.inputImage!, turn.inputImage!.origin === 'UPLOAD' ? 'the uploaded image' : 'the image of this turn')}
            >
              Pick for editing
            </button>
          </>
        )}
      </div>
      <div class="bubble theirs" aria-live="polite">
        {(status === 'QUEUED' || status === 'RUNNING') && turn.job !== null && <JobProgress job={turn.job} />}
        {status === 'FINISHING' && <span class="muted">Finishing…</span>}
        {status === 'SUCCEEDED' && turn.text !== null && <p class="answer">{turn.text}</p>}
        {status === 'SUCCEEDED' && turn.image !== null && (
          <figure class={picked ? 'picked' : undefined}>
            <a href={href.image(turn.image.id)}>
              <Pixels image={turn.image} alt={`Image for “${turn.prompt}”`} size={192} />
            </a>
            <figcaption class="muted">
              seed {turn.settings.seed}
              {turn.settings.scale !== null && <> · scale {turn.settings.scale}</>}
              {turn.settings.promptGuidance !== null && <> · guidance {turn.settings.promptGuidance}</>}
              {turn.settings.selfCheck === true && <> · self-check</>}
            </figcaption>
          </figure>
        )}
        {status === 'FAILED' && <p class="error">Failed: {turn.error?.message ?? 'the model failed'}</p>}
        {status === 'CANCELLED' && <p class="muted">Cancelled.</p>}
        {FINISHED.has(status) && (
          <div class="actions">
            {turn.image !== null && (
              <button type="button" onClick={() => onPick(turn.image!, `image of “${turn.prompt}”`)} aria-pressed={picked}>
                Pick for editing
              </button>
            )}
            {turn.image !== null && <a href={href.image(turn.image.id)}>Details</a>}
            <button type="button" onClick={() => onReroll(turn)}>
              Reroll
            </button>
            <When date={turn.createdAt} />
          </div>
        )}
      </div>
    </li>
  );
}

async function fileToBase64(file: File): Promise<string> {
  let blob: Blob = file;
  if (file.type !== 'image/png' && file.type !== 'image/jpeg') {
    // Another format the browser can read (WebP, GIF, ...): sent as PNG, which the server accepts.
    const bitmap = await createImageBitmap(file);
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
    blob = await new Promise<Blob>((resolve, reject) => canvas.toBlob((b) => (b === null ? reject(new Error('cannot convert the image')) : resolve(b)), 'image/png'));
  }
  const url = await new Promise<string>((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
  return url.slice(url.indexOf(',') + 1);
}

function Composer({
  session,
  conversationId,
  picked,
  setPicked,
  textarea,
  onStarted,
}: {
  session: Session;
  conversationId: string | undefined;
  picked: Picked | null;
  setPicked: (p: Picked | null) => void;
  textarea: { current: HTMLTextAreaElement | null };
  onStarted: (payload: TurnPayload) => Promise<void>;
}) {
  const [prompt, setPrompt] = useState('');
  const [seed, setSeed] = useState('');
  const [scale, setScale] = useState('');
  const [guidance, setGuidance] = useState('');
  const [selfCheck, setSelfCheck] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);

  const attach = async (file: File | undefined) => {
    if (file === undefined) return;
    if (!file.type.startsWith('image/')) {
      setProblem(`${file.name} is not an image.`);
      return;
    }
    try {
      const base64 = await fileToBase64(file);
      if ((base64.length * 3) / 4 > session.limits.maxUploadBytes) {
        setProblem(`${file.name} is larger than the server accepts (${Math.round(session.limits.maxUploadBytes / 1048576)} MiB).`);
        return;
      }
      setProblem(null);
      setPicked({ kind: 'upload', base64, previewUrl: URL.createObjectURL(file), name: file.name });
    } catch (e) {
      setProblem(e instanceof Error ? e.message : String(e));
    }
  };

  const run = async (task: Task) => {
    const text = prompt.trim();
    if (text === '') {
      setProblem('Type a prompt first.');
      textarea.current?.focus();
      return;
    }
    if (task !== 'GENERATE' && picked === null) {
      setProblem(task === 'UNDERSTAND' ? 'Attach an image to ask about (or pick one in the conversation).' : 'Pick an image in the conversation, or attach one, to edit.');
      return;
    }
    if (seed !== '' && !/^\d+$/.test(seed.trim())) {
      setProblem('The seed is a whole number from 0 to 2147483647.');
      return;
    }
    const guidanceValue = Number(guidance.trim());
    if (guidance.trim() !== '' && !(guidanceValue >= 0 && guidanceValue <= 50)) {
      setProblem('Guidance is a number from 0 to 50 (1 is off).');
      return;
    }
    const input: Record<string, unknown> = { prompt: text, wait: false };
    // Guidance and the self-check are about the image the model writes, so Ask (a text answer) sends neither.
    if (task !== 'UNDERSTAND') {
      const sampling = { ...(guidance.trim() === '' ? {} : { promptGuidance: guidanceValue }), ...(selfCheck ? { selfCheck: true } : {}) };
      if (Object.keys(sampling).length > 0) input.sampling = sampling;
    }
    if (conversationId !== undefined) input.conversationId = conversationId;
    if (seed.trim() !== '') input.seed = Number(seed.trim());
    if (scale !== '') input.scale = Number(scale);
    if (task !== 'GENERATE' && picked !== null) input.image = picked.kind === 'upload' ? { base64: picked.base64 } : { id: picked.id };
    setBusy(true);
    setProblem(null);
    try {
      const mutation = task === 'GENERATE' ? GENERATE : task === 'EDIT' ? EDIT : UNDERSTAND;
      const field = task === 'GENERATE' ? 'generate' : task === 'EDIT' ? 'edit' : 'understand';
      const data = await gql<Record<string, TurnPayload>>(mutation, { input });
      const payload = data[field]!;
      if (payload.errors.length > 0) {
        setProblem(payload.errors.map((e) => e.message).join(' '));
        return;
      }
      setPrompt('');
      setPicked(null);
      await onStarted(payload);
    } catch (e) {
      setProblem(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };

  const experimental = (task: Task) => (session.model.experimental.includes(task) ? ' (experimental)' : '');
  return (
    <form
      class={`composer${dragging ? ' dragging' : ''}`}
      aria-label="Composer"
      onSubmit={(e) => {
        e.preventDefault();
        void run(picked === null ? 'GENERATE' : 'UNDERSTAND');
      }}
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        void attach(e.dataTransfer?.files[0]);
      }}
    >
      <label for="prompt">Prompt</label>
      <textarea
        id="prompt"
        ref={textarea}
        rows={2}
        maxLength={session.limits.maxPromptChars}
        placeholder="a red circle on a blue background"
        value={prompt}
        onInput={(e) => setPrompt(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            void run(picked === null ? 'GENERATE' : 'UNDERSTAND');
          }
        }}
        aria-describedby="prompt-hint"
      />
      <p id="prompt-hint" class="hint">Ctrl+Enter: Generate, or Ask when an image is attached. Drop an image here to attach it.</p>
      <div class="picked-image">
        {picked === null ? (
          <>
            <input
              ref={fileInput}
              id="attach"
              class="visually-hidden"
              type="file"
              accept="image/png,image/jpeg,image/webp,image/gif"
              onChange={(e) => {
                void attach(e.currentTarget.files?.[0]);
                e.currentTarget.value = '';
              }}
            />
            <label for="attach" class="button">Attach image</label>
          </>
        ) : (
          <div class="chip" data-picked={picked.kind}>
            <img class="pixels" src={picked.kind === 'upload' ? picked.previewUrl : picked.url} alt="" width={40} height={40} />
            <span>{picked.kind === 'upload' ? `Attached: ${picked.name}` : `Picked: ${picked.name}`}</span>
            <button type="button" onClick={() => setPicked(null)}>Remove image</button>
          </div>
        )}
      </div>
      <div class="settings">
        <label>
          Seed
          <input name="seed" inputMode="numeric" pattern="[0-9]*" placeholder="random" value={seed} onInput={(e) => setSeed(e.currentTarget.value)} size={10} />
        </label>
        <label>
          Scale
          <select
            name="scale"
            value={scale}
            onChange={(e) => setScale(e.currentTarget.value)}
            title={`Default: ${session.model.defaultScale} for a generation; an edit keeps the picked image's scale, or edits an attached one at ${session.model.editScale}`}
          >
            <option value="">default ({session.model.defaultScale}; edits: the image's)</option>
            {session.model.scales.map((s) => (
              <option key={s.scale} value={String(s.scale)}>
                {s.scale}: {s.grid}×{s.grid}, {s.tokens} tokens
              </option>
            ))}
          </select>
        </label>
        <label>
          Guidance
          <input
            name="guidance"
            inputMode="decimal"
            placeholder={`default (${session.model.defaults.image.promptGuidance})`}
            title="How closely a generated or edited image follows the prompt: 1 is off, higher follows harder"
            value={guidance}
            onInput={(e) => setGuidance(e.currentTarget.value)}
            size={10}
          />
        </label>
        {session.model.selfCheck && (
          <label title="The model reads the image it wrote and, when that reading misses the prompt, writes more and keeps the first that meets it (slower when the first misses)">
            <input type="checkbox" name="self-check" checked={selfCheck} onChange={(e) => setSelfCheck(e.currentTarget.checked)} />
            Self-check
          </label>
        )}
      </div>
      <div class="buttons">
        <button type="button" disabled={busy} onClick={() => void run('GENERATE')} title={`Generate an image from the prompt${experimental('GENERATE')}`}>Generate</button>
        <button type="button" disabled={busy} onClick={() => void run('UNDERSTAND')} title={`Ask about the attached or picked image${experimental('UNDERSTAND')}`}>Ask</button>
        <button type="button" disabled={busy} onClick={() => void run('EDIT')} title={`Edit the picked image with the prompt as the instruction${experimental('EDIT')}`}>Edit</button>
      </div>
      {session.model.experimental.length > 0 && (
        <p class="hint">
          {session.model.experimental.map((t) => TASK_NAMES[t]).join(', ')} {session.model.experimental.length === 1 ? 'is' : 'are'} experimental with{' '}
          {session.model.name} {session.model.version}.
        </p>
      )}
      {problem !== null && <ErrorNote>{problem}</ErrorNote>}
    </form>
  );
}
