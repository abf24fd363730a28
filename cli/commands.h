/* commands.h — one entry per subcommand; each lives in cli/cmd_<name>.c (bench/ for
 * bench). A command returns the process exit code and prints its own errors as one
 * line "llava-mech <cmd>: <message>" on stderr. */
#ifndef LLAVA_MECH_CLI_COMMANDS_H
#define LLAVA_MECH_CLI_COMMANDS_H

typedef int (*cli_cmd_fn)(int argc, char **argv);

typedef struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} cli_command;

/* Add a declaration and a table line per command (keep the table sorted). */

int cmd_ask(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_convert_vocab(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_make_model(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_toy(int argc, char **argv);
int cmd_toy_train(int argc, char **argv); /* `toy train`, dispatched by cmd_toy */
int cmd_vqa(int argc, char **argv);

#define CLI_COMMANDS \
    {"ask", cmd_ask, "answer a question about an image (LLaVA; --json, --logits-out)"}, \
    {"bench", cmd_bench, "benchmarks: matmul (GFLOP/s vs sgemm peak and memory bandwidth), ..."}, \
    {"convert-vocab", cmd_convert_vocab, "SentencePiece .model -> GGUF holding only the tokenizer keys"}, \
    {"encode", cmd_encode, "image -> vision tower + projector -> image tokens (.npy) with pad/crop preprocessing"}, \
    {"explain", cmd_explain, "explain an answer: attention, rollout, knockout, occlusion, logit-lens, heads, dla"}, \
    {"info", cmd_info, "show a GGUF file: hyper-parameters, metadata, tensors (--json)"}, \
    {"make-model", cmd_make_model, "write random-weight LM + mmproj GGUF files with real shapes (presets)"}, \
    {"tokenize", cmd_tokenize, "show the token ids and pieces of a text or a LLaVA prompt"}, \
    {"toy", cmd_toy, "toy world: generate scene/question data sets, train the toy model"}, \
    {"vqa", cmd_vqa, "VQA regression runner: accuracy per question type, --expect, shards"},

#endif
