// Starts a saved replay page with no server: the page's ES modules are inlined as text
// (#modules: {"name.js": source}); each becomes a blob: URL, its imports of "./other.js"
// pointed at the other's URL, and the entry module is imported.
const sources = JSON.parse(document.getElementById("modules").textContent);
const urls = {};
const IMPORT = /from "\.\/([\w-]+\.js)"/g;

function link(name) {
  if (urls[name]) return urls[name];
  if (!(name in sources)) throw new Error(`the saved page lacks the module ${name}`);
  const source = sources[name].replace(IMPORT, (_, dependency) => `from "${link(dependency)}"`);
  urls[name] = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  return urls[name];
}

import(link(document.getElementById("modules").dataset.entry)).catch((err) => {
  const box = document.getElementById("notice");
  box.textContent = `this saved replay cannot start: ${err.message}`;
  box.hidden = false;
});
