/** History: every conversation, newest first, loading more as the list scrolls; and a search over prompts. */
import { useState } from 'preact/hooks';
import { type Connection, type Conversation, CONVERSATIONS, gql, type ImageRef, SEARCH, type Task, type TurnStatus } from '../api.ts';
import { ErrorNote, LoadMore, Pixels, usePaged, When } from '../components/common.tsx';
import { href, navigate } from '../router.ts';

interface Found {
  id: string;
  task: Task;
  prompt: string;
  text: string | null;
  status: TurnStatus;
  createdAt: string;
  conversation: { id: string; title: string };
  image: ImageRef | null;
  inputImage: ImageRef | null;
}

export function HistoryPage({ query, first }: { query: string; first: number }) {
  const [text, setText] = useState(query);
  return (
    <section class="page" aria-labelledby="history-title">
      <h1 id="history-title">History</h1>
      <form
        role="search"
        class="search"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href.history(text.trim()));
        }}
      >
        <label for="search">Search prompts</label>
        <input id="search" type="search" value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder="circle blue" />
        <button type="submit">Search</button>
      </form>
      {query === '' ? <Conversations first={first} /> : <Results query={query} first={first} />}
    </section>
  );
}

function Conversations({ first }: { first: number }) {
  const list = usePaged<Conversation>(async (after) => (await gql<{ conversations: Connection<Conversation> }>(CONVERSATIONS, { first, after })).conversations);
  return (
    <>
      <h2>Conversations</h2>
      <ul class="list" aria-label="Conversations" data-count={list.items.length}>
        {list.items.map((c) => (
          <li key={c.id} data-conversation-id={c.id}>
            <a href={href.conversation(c.id)}>{c.title}</a> <When date={c.createdAt} />
          </li>
        ))}
      </ul>
      {list.error !== null && <ErrorNote>{list.error}</ErrorNote>}
      {list.items.length === 0 && !list.more && !list.loading && <p class="muted">No conversations yet.</p>}
      <LoadMore more={list.more} loading={list.loading} onMore={() => void list.loadMore()} label="Load more conversations" />
    </>
  );
}

function Results({ query, first }: { query: string; first: number }) {
  const list = usePaged<Found>(async (after) => (await gql<{ search: Connection<Found> }>(SEARCH, { query, first, after })).search);
  return (
    <>
      <h2>Turns matching “{query}”</h2>
      <ul class="list" aria-label="Search results" data-count={list.items.length}>
        {list.items.map((t) => (
          <li key={t.id} data-turn-id={t.id} class="found">
            {(t.image ?? t.inputImage) !== null && (
              <a href={href.image((t.image ?? t.inputImage)!.id)} class="thumb">
                <Pixels image={(t.image ?? t.inputImage)!} alt="" size={48} />
              </a>
            )}
            <div>
              <a href={href.conversation(t.conversation.id)}>{t.prompt}</a>
              <div class="muted">
                {t.task.toLowerCase()} · {t.status.toLowerCase()} · <When date={t.createdAt} /> · in {t.conversation.title}
              </div>
              {t.text !== null && <p class="answer">{t.text}</p>}
            </div>
          </li>
        ))}
      </ul>
      {list.error !== null && <ErrorNote>{list.error}</ErrorNote>}
      {list.items.length === 0 && !list.more && !list.loading && <p class="muted">Nothing matches.</p>}
      <LoadMore more={list.more} loading={list.loading} onMore={() => void list.loadMore()} label="Load more results" />
    </>
  );
}
