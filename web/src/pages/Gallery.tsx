/** The gallery: every image of the person's (uploads, generated, edited), newest first, loading as it scrolls. */
import { type Connection, gql, type ImageRef, IMAGES } from '../api.ts';
import { ErrorNote, LoadMore, Pixels, usePaged } from '../components/common.tsx';
import { href, navigate } from '../router.ts';

type Item = ImageRef & { createdAt: string; turn: { id: string; prompt: string } | null };

export function GalleryPage({ origin, first }: { origin: string | undefined; first: number }) {
  const list = usePaged<Item>(async (after) => (await gql<{ images: Connection<Item> }>(IMAGES, { first, after, origin: origin ?? null })).images);
  return (
    <section class="page" aria-labelledby="gallery-title">
      <h1 id="gallery-title">Gallery</h1>
      <label class="inline">
        Origin
        <select value={origin ?? ''} onChange={(e) => navigate(e.currentTarget.value === '' ? href.gallery() : `${href.gallery()}?origin=${e.currentTarget.value}`)}>
          <option value="">all images</option>
          <option value="GENERATED">generated</option>
          <option value="EDITED">edited</option>
          <option value="UPLOAD">uploaded</option>
        </select>
      </label>
      <ul class="gallery" aria-label="Images" data-count={list.items.length}>
        {list.items.map((image) => (
          <li key={image.id} data-image-id={image.id}>
            <a href={href.image(image.id)} title={image.turn?.prompt ?? image.origin.toLowerCase()}>
              <Pixels image={image} alt={image.turn?.prompt ? `${image.origin.toLowerCase()}: ${image.turn.prompt}` : `${image.origin.toLowerCase()} image`} size={128} />
            </a>
          </li>
        ))}
      </ul>
      {list.error !== null && <ErrorNote>{list.error}</ErrorNote>}
      {list.items.length === 0 && !list.more && !list.loading && <p class="muted">No images yet.</p>}
      <LoadMore more={list.more} loading={list.loading} onMore={() => void list.loadMore()} label="Load more images" />
    </section>
  );
}
