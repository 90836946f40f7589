/**
 * One image: the picture (pixel-exact) with its token grid drawn over it (an SVG: one cell per image token, with
 * its id), the turn that made it (prompt, settings, timings), its parent and children in the edit tree, download.
 */
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { gql, IMAGE, type ImageOrigin, type ImageRef, type Task } from '../api.ts';
import { ErrorNote, Pixels, When } from '../components/common.tsx';
import { href } from '../router.ts';

interface Detail {
  id: string;
  url: string;
  width: number;
  height: number;
  scale: number;
  grid: number;
  tokens: number[];
  codebookSize: number;
  origin: ImageOrigin;
  model: string;
  contentHash: string;
  createdAt: string;
  parent: ImageRef | null;
  children: ImageRef[];
  turn: {
    id: string;
    task: Task;
    prompt: string;
    createdAt: string;
    model: string;
    conversation: { id: string; title: string };
    inputImage: ImageRef | null;
    settings: Record<string, number | null>;
    timings: Record<string, number> | null;
  } | null;
}

const SIZE = 384;

export function ImagePage({ id }: { id: string }) {
  const [image, setImage] = useState<Detail | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [grid, setGrid] = useState(true);
  useEffect(() => {
    gql<{ image: Detail | null }>(IMAGE, { id })
      .then((data) => setImage(data.image))
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [id]);
  if (error !== null) return <ErrorNote>{error}</ErrorNote>;
  if (image === undefined) return <p class="muted" role="status">Loading…</p>;
  if (image === null) {
    return (
      <section class="page">
        <h1>Image not found</h1>
        <p>This image does not exist, or is not yours. <a href={href.gallery()}>Back to the gallery</a></p>
      </section>
    );
  }
  const turn = image.turn;
  const settings = turn === null ? [] : Object.entries(turn.settings).filter(([, v]) => v !== null);
  return (
    <section class="page image-page" aria-labelledby="image-title">
      <h1 id="image-title">{turn?.prompt !== undefined && image.origin !== 'UPLOAD' ? turn.prompt : `${origins[image.origin]} image`}</h1>
      <div class="image-layout">
        <div>
          <div class="overlay" style={{ width: `${SIZE}px`, maxWidth: '100%' }}>
            <Pixels image={image} alt={turn?.prompt ?? 'image'} size={SIZE} />
            {grid && <TokenGrid grid={image.grid} tokens={image.tokens} />}
          </div>
          <div class="actions">
            <label class="inline">
              <input type="checkbox" checked={grid} onChange={(e) => setGrid(e.currentTarget.checked)} /> Show token grid
            </label>
            <a class="button" href={image.url} download={`dialect-${image.id}.png`}>Download PNG</a>
            <a class="button" href={href.editImage(image.id, turn?.conversation.id)}>Edit this image</a>
          </div>
        </div>
        <div class="facts">
          <dl>
            <dt>Origin</dt>
            <dd>{origins[image.origin]}</dd>
            {turn !== null && (
              <>
                <dt>Prompt</dt>
                <dd class="prompt">{turn.prompt}</dd>
                <dt>Task</dt>
                <dd>{turn.task.toLowerCase()}</dd>
                <dt>Conversation</dt>
                <dd><a href={href.conversation(turn.conversation.id)}>{turn.conversation.title}</a></dd>
              </>
            )}
            <dt>Size</dt>
            <dd>{image.width}×{image.height} px, scale {image.scale}: {image.grid}×{image.grid} = {image.tokens.length} tokens of {image.codebookSize}</dd>
            <dt>Model</dt>
            <dd>{image.model}</dd>
            <dt>Made</dt>
            <dd><When date={image.createdAt} /></dd>
          </dl>
          {settings.length > 0 && (
            <>
              <h2>Settings</h2>
              <dl class="settings-list">
                {settings.map(([k, v]) => (
                  <Fragment key={k}>
                    <dt>{k}</dt>
                    <dd>{String(v)}</dd>
                  </Fragment>
                ))}
              </dl>
            </>
          )}
          {turn?.timings != null && (
            <>
              <h2>Timings</h2>
              <table class="timings">
                <caption class="visually-hidden">Milliseconds per stage</caption>
                <tbody>
                  {Object.entries(turn.timings).map(([k, v]) => (
                    <tr key={k}>
                      <th scope="row">{k}</th>
                      <td>{k === 'decodeTokens' ? `${v} tokens` : `${v.toFixed(1)} ms`}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
          <h2>Edit tree</h2>
          <nav aria-label="Edit tree" class="tree">
            <div>
              <span class="muted">Parent: </span>
              {image.parent === null ? (
                turn?.inputImage != null && turn.task === 'EDIT' ? <TreeLink image={turn.inputImage} rel="Parent" /> : <span>none</span>
              ) : (
                <TreeLink image={image.parent} rel="Parent" />
              )}
            </div>
            <div>
              <span class="muted">Children: </span>
              {image.children.length === 0 ? <span>none</span> : image.children.map((child) => <TreeLink key={child.id} image={child} rel="Child" />)}
            </div>
          </nav>
        </div>
      </div>
    </section>
  );
}

const origins: Record<ImageOrigin, string> = { UPLOAD: 'Uploaded', GENERATED: 'Generated', EDITED: 'Edited' };

function TreeLink({ image, rel }: { image: ImageRef; rel: string }) {
  return (
    <a class="tree-link" href={href.image(image.id)} aria-label={`${rel} image ${image.id.slice(0, 8)}`}>
      <Pixels image={image} alt="" size={48} />
    </a>
  );
}

/** The token grid over the image: cell lines and each cell's token id, scaled with the image. */
export function TokenGrid({ grid, tokens }: { grid: number; tokens: number[] }) {
  const cell = 100 / grid;
  const font = Math.max(1.6, cell / 3.2);
  return (
    <svg class="token-grid" viewBox="0 0 100 100" preserveAspectRatio="none" role="img" aria-label={`Token grid: ${grid}×${grid} image tokens`}>
      {Array.from({ length: grid + 1 }, (_, i) => (
        <g key={i}>
          <line x1={i * cell} y1={0} x2={i * cell} y2={100} />
          <line x1={0} y1={i * cell} x2={100} y2={i * cell} />
        </g>
      ))}
      {tokens.map((token, i) => (
        <text key={i} x={(i % grid) * cell + cell / 2} y={Math.floor(i / grid) * cell + cell / 2} font-size={font} text-anchor="middle" dominant-baseline="central">
          {token}
        </text>
      ))}
    </svg>
  );
}
