// Times every engine in rounds of per-engine blocks (order rotated each round): one untimed run,
// then `per` timed ones, so no engine is timed while another one's threads still spin (onnxruntime's
// pool spins after a run and took the cores from the next engine when runs were interleaved singly).
// runs: name → async () => void. Returns name → ms of each timed run.
export async function timeBlocks(runs, count, per) {
  const keys = Object.keys(runs);
  const t = Object.fromEntries(keys.map((k) => [k, []]));
  for (const k of keys) await runs[k]();
  for (let i = 0; i < Math.ceil(count / per); i++) {
    for (let j = 0; j < keys.length; j++) {
      const k = keys[(i + j) % keys.length];
      await runs[k]();
      for (let r = 0; r < per; r++) {
        const s0 = performance.now();
        await runs[k]();
        t[k].push(performance.now() - s0);
      }
    }
  }
  return t;
}
