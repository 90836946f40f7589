import { useState } from 'preact/hooks';

/** Asked for when the server answers UNAUTHENTICATED (a server off loopback, or one with keys configured). */
export function KeyPrompt({ message, onKey }: { message: string | undefined; onKey: (key: string) => void }) {
  const [key, setKey] = useState('');
  return (
    <section class="page narrow" aria-labelledby="key-title">
      <h1 id="key-title">Sign in with an API key</h1>
      <p>
        This server needs an API key. Ask its operator for one (they make it with <code>dialect keys create</code>).
        The key stays in this browser until you sign out.
      </p>
      {message !== undefined && <p class="notice error" role="alert">{message}</p>}
      <form
        class="stack"
        onSubmit={(e) => {
          e.preventDefault();
          const trimmed = key.trim();
          if (trimmed !== '') onKey(trimmed);
        }}
      >
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autoComplete="off" required value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        <button type="submit">Sign in</button>
      </form>
    </section>
  );
}
