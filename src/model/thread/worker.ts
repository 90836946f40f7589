/**
 * The model thread: owns one TarModel and runs the caller's requests on it (see threaded-model.ts). onnxruntime-node
 * runs a graph synchronously on the thread that calls it, so here inference blocks only this thread, and the
 * caller's thread (HTTP, SQL, the next requests) keeps going on another core.
 *
 * Requests are handled as they come, as in-thread calls would be: concurrent ones share decoder batches, an abort
 * message aborts the request's own AbortSignal, and progress events are forwarded when the caller listens.
 */
import { parentPort } from 'node:worker_threads';
import { workerInput } from '../../lib/ts-worker.ts';
import { type ProgressEvent, TarModel } from '../tar-model.ts';
import { type FromThread, type Method, type ThreadInput, type ToThread, toWireError } from './protocol.ts';

if (parentPort === null) throw new Error('model/thread/worker.ts runs as a worker thread');
const port = parentPort;
const post = (message: FromThread) => port.postMessage(message);

let model: TarModel;
try {
  model = await TarModel.load({ ...workerInput<ThreadInput>(), onLoadProgress: (event) => post({ kind: 'load-progress', event }) });
} catch (error) {
  post({ kind: 'load-failed', error: toWireError(error) });
  process.exit(0); // ends this thread only
}
post({ kind: 'ready', manifest: model.manifest, info: model.info(), metrics: model.metrics() });

const running = new Map<number, AbortController>();

port.on('message', (message: ToThread) => {
  if (message.kind === 'call') void call(message.id, message.method, message.request, message.progress);
  else if (message.kind === 'abort') running.get(message.id)?.abort(new Error('aborted by the caller'));
  else void model.dispose().finally(() => post({ kind: 'disposed' }));
});

async function call(id: number, method: Method, request: Record<string, unknown>, progress: boolean): Promise<void> {
  const controller = new AbortController();
  running.set(id, controller);
  const signal = controller.signal;
  // The decoders' counters ride along when a stage starts (admission changes them) and with the answer, not with
  // every token: a decode step's progress event is on the thread's hot path.
  const onProgress = progress
    ? (event: ProgressEvent) => post({ kind: 'progress', id, event, ...(event.done === 0 ? { metrics: model.metrics() } : {}) })
    : undefined;
  const options = { ...request, signal, ...(onProgress === undefined ? {} : { onProgress }) };
  try {
    const value = await run(method, options);
    try {
      post({ kind: 'result', id, value, metrics: model.metrics() });
    } catch (error) {
      post({ kind: 'error', id, error: toWireError(error), metrics: model.metrics() });
    }
  } catch (error) {
    post({ kind: 'error', id, error: toWireError(error), metrics: model.metrics() });
  } finally {
    running.delete(id);
  }
}

// The request objects were built by ThreadedTarModel from the same typed requests; TarModel validates them again.
function run(method: Method, request: any): Promise<unknown> {
  switch (method) {
    case 'understand':
      return model.understand(request);
    case 'generate':
      return model.generate(request);
    case 'edit':
      return model.edit(request);
    case 'renderImage':
      return model.renderImage(request);
    case 'encodeImage':
      return model.encodeImage(request.bytes, request.scale, request.signal);
    case 'encodeImageViews':
      return model.encodeImageViews(request.bytes, request.scale, request.viewScales, request.signal);
  }
}
