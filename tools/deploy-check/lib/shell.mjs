// Just enough of POSIX shell word splitting to read command lines from scripts and compose files:
// quotes, backslash-newline continuations and $vars kept as text.
export function shellWords(text) {
  const words = [];
  let cur = null;
  let i = 0;
  const push = () => { if (cur !== null) words.push(cur); cur = null; };
  while (i < text.length) {
    const c = text[i];
    if (c === "\\" && text[i + 1] === "\n") { i += 2; continue; }
    if (c === " " || c === "\t" || c === "\n") { push(); i++; continue; }
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      cur = (cur ?? "") + text.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let s = "";
      while (j < text.length && text[j] !== '"') {
        if (text[j] === "\\" && j + 1 < text.length) { s += text[j + 1]; j += 2; } else { s += text[j++]; }
      }
      cur = (cur ?? "") + s;
      i = j + 1;
      continue;
    }
    cur = (cur ?? "") + c;
    i++;
  }
  push();
  return words;
}

// The command lines of a shell script that run one of `programs` (matched by the word's last path
// component, so "$B/server/psd3d-server" counts), continuations joined, comment lines skipped, cut at
// the first redirection or operator. Returns [{program, words}] with the words after the program.
export function commandsIn(script, programs) {
  const found = [];
  for (const line of script.replace(/\\\n/g, " ").split("\n")) {
    if (line.trim().startsWith("#")) continue;
    const words = shellWords(line);
    const k = words.findIndex((w) => programs.includes(w.split("/").pop()));
    if (k < 0) continue;
    const rest = [];
    for (const w of words.slice(k + 1)) {
      if (/^([0-9]?>|<|&|\||;)/.test(w)) break;
      rest.push(w);
    }
    found.push({ program: words[k].split("/").pop(), words: rest });
  }
  return found;
}
