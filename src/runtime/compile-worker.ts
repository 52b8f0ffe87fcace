// The worker side of BackgroundCompiler (src/runtime/background.ts): loads the model once, then answers
// compile requests with the plan description; the constant region is transferred, not copied.
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { loadModel } from '../onnx/load.js';
import { ModelCompiler } from './model-compiler.js';
import type { CompileRequest, CompileReply } from './background.js';

const { source } = workerData as { source: string | Uint8Array };
// A compile is background work: on Linux, priority 0 means this thread only, so the event loop and the
// native runs keep their share of the cores (on 2 cores the wall time of a health check during
// compiles went from 58–63 ms to 44–57 ms, 3 runs each). Where it is not allowed, the compile just runs at normal priority.
try { os.setPriority(0, 10); } catch { /* not permitted here */ }
let compiler: ModelCompiler | undefined;
let loadError: string | undefined;
try {
  compiler = new ModelCompiler(loadModel(source));
} catch (e) {
  loadError = (e as Error).message;
}

parentPort!.on('message', (req: CompileRequest) => {
  let reply: CompileReply;
  try {
    if (!compiler) throw new Error(loadError ?? 'compile worker: no model');
    const choice = compiler.compile(req.dims, req.opts);
    // A copy is transferred: the compiler's own caches (batch extrapolation) may still view the original.
    const constants = choice.compiled.desc.constants.slice();
    reply = { id: req.id, ok: true, choice: { ...choice, compiled: { ...choice.compiled, desc: { ...choice.compiled.desc, constants } } } };
    parentPort!.postMessage(reply, [constants.buffer]);
    return;
  } catch (e) {
    const err = e as Error & { blockedBy?: unknown };
    reply = { id: req.id, ok: false, name: err.name, message: err.message, blockedBy: err.blockedBy };
  }
  parentPort!.postMessage(reply);
});
