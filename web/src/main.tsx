/** Dialect's web page: the session (who am I, which model, which limits), the API key prompt, navigation, pages. */
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { gql, onUnauthenticated, RequestError, SESSION, type Session, storedKey, storeKey } from './api.ts';
import { ChatPage } from './pages/Chat.tsx';
import { GalleryPage } from './pages/Gallery.tsx';
import { HistoryPage } from './pages/History.tsx';
import { ImagePage } from './pages/Image.tsx';
import { KeyPrompt } from './pages/KeyPrompt.tsx';
import { href, type Route, useRoute } from './router.ts';
import './styles.css';

type State =
  | { kind: 'loading' }
  | { kind: 'needKey'; message?: string }
  | { kind: 'failed'; message: string }
  | { kind: 'ready'; session: Session };

function App() {
  const [state, setState] = useState<State>({ kind: 'loading' });
  const route = useRoute();

  const load = useCallback(async (after?: 'signedIn') => {
    try {
      const session = await gql<Session>(SESSION);
      setState({ kind: 'ready', session });
    } catch (error) {
      if (error instanceof RequestError && error.code === 'UNAUTHENTICATED') {
        const hadKey = storedKey() !== null;
        if (hadKey) storeKey(null);
        setState({ kind: 'needKey', ...(hadKey || after === 'signedIn' ? { message: 'That API key was not accepted. Check it and try again.' } : {}) });
      } else {
        setState({ kind: 'failed', message: error instanceof Error ? error.message : String(error) });
      }
    }
  }, []);

  useEffect(() => {
    void load();
    return onUnauthenticated(() => setState((s) => (s.kind === 'ready' ? { kind: 'needKey', message: 'The server asks for an API key again.' } : s)));
  }, [load]);

  useEffect(() => {
    document.title = `${titleOf(route)} · Dialect`;
  }, [route]);

  const signOut = () => {
    storeKey(null);
    setState({ kind: 'loading' });
    void load();
  };

  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href.chat()}>Dialect</a>
        {state.kind === 'ready' && (
          <nav aria-label="Main">
            <a href={href.chat()} aria-current={route.page === 'chat' ? 'page' : undefined}>Chat</a>
            <a href={href.history()} aria-current={route.page === 'history' ? 'page' : undefined}>History</a>
            <a href={href.gallery()} aria-current={route.page === 'gallery' ? 'page' : undefined}>Gallery</a>
          </nav>
        )}
        {state.kind === 'ready' && (
          <div class="who">
            <span title={`${state.session.model.name} ${state.session.model.version}`}>{state.session.me.name}</span>
            {storedKey() !== null && (
              <button type="button" class="link" onClick={signOut}>Sign out</button>
            )}
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {state.kind === 'loading' && <p class="muted" role="status">Loading…</p>}
        {state.kind === 'failed' && (
          <div class="notice error" role="alert">
            <p>{state.message}</p>
            <button type="button" onClick={() => void load()}>Retry</button>
          </div>
        )}
        {state.kind === 'needKey' && (
          <KeyPrompt
            message={state.message}
            onKey={(key) => {
              storeKey(key);
              setState({ kind: 'loading' });
              void load('signedIn');
            }}
          />
        )}
        {state.kind === 'ready' && <Page route={route} session={state.session} />}
      </main>
    </>
  );
}

function titleOf(route: Route): string {
  switch (route.page) {
    case 'chat':
      return 'Chat';
    case 'history':
      return 'History';
    case 'gallery':
      return 'Gallery';
    case 'image':
      return 'Image';
    default:
      return 'Not found';
  }
}

function Page({ route, session }: { route: Route; session: Session }) {
  switch (route.page) {
    case 'chat':
      return <ChatPage key={route.conversationId ?? 'new'} conversationId={route.conversationId} imageId={route.imageId} session={session} />;
    case 'history':
      return <HistoryPage key={route.query} query={route.query} first={route.first ?? 20} />;
    case 'gallery':
      return <GalleryPage key={route.origin ?? ''} origin={route.origin} first={route.first ?? 24} />;
    case 'image':
      return <ImagePage key={route.id} id={route.id} />;
    default:
      return (
        <section class="page">
          <h1>Not found</h1>
          <p><a href={href.chat()}>Back to the chat</a></p>
        </section>
      );
  }
}

render(<App />, document.getElementById('app')!);
