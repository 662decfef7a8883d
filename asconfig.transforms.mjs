// The asc transforms every app is compiled with (asconfig.json "transform"). This file
// sits beside asconfig.json because asc 0.28 loses the leading "./" of a config-relative
// transform path that has a directory ("./tools/orm/transform.mjs" becomes the package
// name "tools/orm/transform.mjs" and fails to resolve); a bare "./file.mjs" survives.
export { default } from "./tools/orm/transform.mjs";
