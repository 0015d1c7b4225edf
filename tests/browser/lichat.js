// A small Lichat client for the browser test: reads and prints the update
// syntax of lichat.mess §1 (lists, strings, keywords, symbols, numbers) and
// speaks Lichat over a WebSocket with the `lichat` subprotocol, one update
// per text message.
"use strict";

/** Seconds since 1900-01-01 (Lichat's universal time, §2.3). */
function lichatClock() {
  return Math.floor(Date.now() / 1000) + 2208988800;
}

/** Reads one update's text into nested arrays, strings, numbers and
 *  {sym} objects; a keyword is a {sym} with pkg "keyword". */
function readUpdate(text) {
  let i = 0;
  const ws = () => { while (i < text.length && /\s/.test(text[i])) i++; };
  const terminal = (c) => c === undefined || /[\s()"]/.test(c);
  function name() {
    let out = "";
    while (!terminal(text[i]) && text[i] !== ":") {
      if (text[i] === "\\") i++;
      out += text[i++];
    }
    return out;
  }
  function value() {
    ws();
    const c = text[i];
    if (c === "(") {
      i++;
      const list = [];
      for (;;) {
        ws();
        if (text[i] === ")") { i++; return list; }
        if (i >= text.length) throw new Error("unterminated list");
        list.push(value());
      }
    }
    if (c === '"') {
      i++;
      let out = "";
      while (text[i] !== '"') {
        if (i >= text.length) throw new Error("unterminated string");
        if (text[i] === "\\") i++;
        out += text[i++];
      }
      i++;
      return out;
    }
    if (c === ":") { i++; return { pkg: "keyword", sym: name().toLowerCase() }; }
    const start = i;
    let first = name();
    if (/^[+-]?\d+(\.\d+)?$/.test(first)) return Number(first);
    if (text[i] === ":") { i++; return { pkg: first.toLowerCase(), sym: name().toLowerCase() }; }
    if (start === i) throw new Error("unexpected " + c);
    return { pkg: "lichat", sym: first.toLowerCase() };
  }
  return value();
}

/** An update read by readUpdate as {type, fields}. */
function asUpdate(list) {
  const fields = {};
  for (let k = 1; k + 1 < list.length; k += 2) fields[list[k].sym] = list[k + 1];
  return { type: list[0].sym, fields };
}

function printString(s) {
  return '"' + s.replace(/[\\"]/g, (c) => "\\" + c) + '"';
}

/** Prints an update of `type` with string or number fields. */
function printUpdate(type, fields) {
  let out = "(" + type;
  for (const [k, v] of Object.entries(fields)) {
    out += " :" + k + " " + (typeof v === "number" ? String(v) : printString(v));
  }
  return out + ")";
}

/** A Lichat connection over a WebSocket. `onUpdate({type, fields})` sees
 *  every update the server sends. */
class LichatSocket {
  constructor(url, username, onUpdate) {
    this.username = username;
    this.nextId = 1;
    this.onUpdate = onUpdate;
    this.socket = new WebSocket(url, "lichat");
    this.socket.onopen = () => {
      this.send("connect", { version: "2.0" });
    };
    this.socket.onmessage = (ev) => {
      const text = String(ev.data).replace(/\0$/, "");
      let update;
      try {
        update = asUpdate(readUpdate(text));
      } catch (e) {
        update = { type: "unreadable", fields: { text: e.message + ": " + text } };
      }
      this.onUpdate(update);
    };
  }

  send(type, fields) {
    const all = Object.assign({ id: this.nextId++, clock: lichatClock(), from: this.username }, fields);
    this.socket.send(printUpdate(type, all));
  }
}
