/** Hash routes (`#/c/<id>`, `#/history`, `#/gallery`, `#/image/<id>`): the server serves one static page at `/`. */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'chat'; conversationId?: string; imageId?: string }
  | { page: 'history'; query: string; first?: number }
  | { page: 'gallery'; origin?: string; first?: number }
  | { page: 'image'; id: string }
  | { page: 'notFound' };

export function parseRoute(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(search);
  const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const first = params.has('first') ? Number(params.get('first')) : undefined;
  const valid = first !== undefined && Number.isInteger(first) && first > 0 ? first : undefined;
  if (parts.length === 0 || parts[0] === 'chat') {
    const imageId = params.get('image') ?? undefined;
    return imageId === undefined ? { page: 'chat' } : { page: 'chat', imageId };
  }
  if (parts[0] === 'c' && parts[1] !== undefined) {
    const imageId = params.get('image') ?? undefined;
    return { page: 'chat', conversationId: parts[1], ...(imageId === undefined ? {} : { imageId }) };
  }
  if (parts[0] === 'history') return { page: 'history', query: params.get('q') ?? '', ...(valid === undefined ? {} : { first: valid }) };
  if (parts[0] === 'gallery') {
    const origin = params.get('origin') ?? undefined;
    return { page: 'gallery', ...(origin === undefined ? {} : { origin }), ...(valid === undefined ? {} : { first: valid }) };
  }
  if (parts[0] === 'image' && parts[1] !== undefined) return { page: 'image', id: parts[1] };
  return { page: 'notFound' };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const listener = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', listener);
    return () => removeEventListener('hashchange', listener);
  }, []);
  return route;
}

export function navigate(hash: string): void {
  if (location.hash !== hash) location.hash = hash;
}

export const href = {
  chat: () => '#/',
  conversation: (id: string) => `#/c/${encodeURIComponent(id)}`,
  history: (q = '') => (q === '' ? '#/history' : `#/history?q=${encodeURIComponent(q)}`),
  gallery: () => '#/gallery',
  image: (id: string) => `#/image/${encodeURIComponent(id)}`,
  /** The chat with an image picked for editing (in its conversation when given). */
  editImage: (id: string, conversationId?: string) =>
    `${conversationId === undefined ? '#/' : `#/c/${encodeURIComponent(conversationId)}`}?image=${encodeURIComponent(id)}`,
};
