// compat.mjs — llama.cpp's side of the comparison (compat.sh). Loads LM.gguf with the
// llama.cpp that node-llama-cpp ships, and for each prompt in OURS.json (lm_probs's
// output): tokenizes the text, evaluates our ids (BOS first) and takes the full next-token
// distribution, then feeds our greedy token and takes it again. Prints one line per
// prompt and fails (exit 1) when the ids differ or a log-probability is further from
// ours than TOL, over the tokens either side gives at least 1e-4.
//
// usage: node compat.mjs LM.gguf OURS.json TOL
import {readFileSync} from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [path, oursPath, tolArg] = process.argv.slice(2);
const tol = Number(tolArg);
const ours = JSON.parse(readFileSync(oursPath, "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
let model;
try {
    model = await llama.loadModel({modelPath: path});
} catch (e) {
    console.error(`${path}: llama.cpp refused the file: ${e.message}`);
    process.exit(1);
}
if (model.vocabularyType !== "spm") {
    console.error(`${path}: llama.cpp reads a ${model.vocabularyType} vocabulary, not SentencePiece (spm)`);
    process.exit(1);
}
const nv = ours.n_vocab;
console.log(`llama.cpp loaded ${path}: ${model.typeDescription}, ${model.embeddingVectorSize} wide, ` +
            `context ${model.trainContextSize}`);
// an f32 KV cache and no flash attention, so that only the matmuls' own arithmetic differs
// (llama.cpp's default cache is f16)
const ctx = await model.createContext({contextSize: 256, batchSize: 256, threads: 2, flashAttention: false,
                                       experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
const seq = ctx.getSequence();
// temperature 1 with every filter off: the probabilities are the plain softmax of the logits
const sampling = {temperature: 1, topK: 0, topP: 1, minP: 0, yieldEogToken: true};

function compare(what, mine, probs) {
    if (probs.size !== nv) return {what, worst: Infinity, at: -1, top: -1, note: `${probs.size} tokens in llama.cpp's distribution`};
    let worst = 0, at = -1, top = 0;
    for (let i = 0; i < nv; i++) {
        const p = probs.get(i) ?? 0;
        if (p > (probs.get(top) ?? 0)) top = i;
        if (p < 1e-4 && Math.exp(mine[i]) < 1e-4) continue;
        const d = Math.abs(Math.log(Math.max(p, 1e-30)) - mine[i]);
        if (d > worst) { worst = d; at = i; }
    }
    return {what, worst, at, top};
}

let bad = 0;
for (const p of ours.prompts) {
    const theirs = [model.tokens.bos, ...model.tokenize(p.text)];
    const same = theirs.length === p.ids.length && theirs.every((t, i) => t === p.ids[i]);
    if (!same) {
        console.log(`FAIL ${JSON.stringify(p.text)}: llama.cpp ids ${theirs.join(" ")} / ours ${p.ids.join(" ")}`);
        bad++;
        continue;
    }
    await seq.clearHistory();
    const it = seq.evaluateWithMetadata(p.ids, {probabilities: true}, sampling);
    const r1 = await it.next();
    const r2 = await it.next(p.next);
    await it.return();
    for (const c of [compare("prefill", p.prefill, r1.value.probabilities),
                     compare("decode", p.decode, r2.value.probabilities)]) {
        const ok = c.worst <= tol;
        if (!ok) bad++;
        console.log(`${ok ? "ok  " : "FAIL"} ${c.what} ${JSON.stringify(p.text)} (${p.ids.length} ids): ` +
                    `max |d log p| ${c.worst.toExponential(2)} at token ${c.at} (tolerance ${tol}); ` +
                    `llama.cpp top token ${c.top}${c.note ? "; " + c.note : ""}`);
    }
}
await ctx.dispose();
await model.dispose();
process.exit(bad ? 1 : 0);
