// The out-of-memory transform (tools/oom/transform.mjs), listed in asconfig.json
// "transform"; a bare "./file.mjs" beside asconfig.json, as asconfig.transforms.mjs explains.
export { default } from "./tools/oom/transform.mjs";
