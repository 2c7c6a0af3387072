/**
 * Finds where a JSON object or array ends in text that arrives piece by piece, checking its
 * syntax on the way: a call written token by token is known whole (or broken) the moment its
 * last bracket arrives, without re-reading what came before. Numbers are only checked for their
 * characters; JSON.parse of the finished slice has the last word.
 */

/** feed(): still open. */
export const JSON_OPEN = -1;
/** feed(): the text cannot be (the start of) a JSON object or array. */
export const JSON_INVALID = -2;

export interface JsonScanner {
  /**
   * Reads the next piece. Returns the index in `piece` just past the value's closing bracket,
   * JSON_OPEN while it is not closed yet, or JSON_INVALID (for good: later pieces are not read).
   * Leading whitespace is skipped; the value must be an object or an array.
   */
  feed(piece: string): number;
}

enum Mode {
  Value,
  ArrayFirst,
  ObjectFirst,
  Key,
  Colon,
  After,
  String,
  Escape,
  Hex,
  Number,
  Literal,
  Done,
  Invalid,
}

const WS = new Set([" ", "\t", "\n", "\r"]);
const ESCAPES = new Set(['"', "\\", "/", "b", "f", "n", "r", "t"]);
const NUMBER_CHARS = /[0-9.eE+-]/;
const HEX = /[0-9a-fA-F]/;
const LITERALS: Record<string, string> = { t: "rue", f: "alse", n: "ull" };

export function createJsonScanner(): JsonScanner {
  const stack: string[] = [];
  let mode = Mode.Value;
  let stringIsKey = false;
  let hexLeft = 0;
  let literal = "";

  /** A value just ended: what may follow it. */
  function valueEnded(): void {
    mode = stack.length === 0 ? Mode.Done : Mode.After;
  }

  /** Reads one character; false when it breaks the syntax. */
  function step(c: string): boolean {
    switch (mode) {
      case Mode.Value:
      case Mode.ArrayFirst:
        if (WS.has(c)) return true;
        if (mode === Mode.ArrayFirst && c === "]") return close("[");
        if (c === "{") return open("{", Mode.ObjectFirst);
        if (c === "[") return open("[", Mode.ArrayFirst);
        if (stack.length === 0) return false; // the top level is a container
        if (c === '"') return startString(false);
        if (c === "-" || (c >= "0" && c <= "9")) {
          mode = Mode.Number;
          return true;
        }
        if (c in LITERALS) {
          literal = LITERALS[c];
          mode = Mode.Literal;
          return true;
        }
        return false;
      case Mode.ObjectFirst:
        if (WS.has(c)) return true;
        if (c === "}") return close("{");
        return c === '"' && startString(true);
      case Mode.Key:
        if (WS.has(c)) return true;
        return c === '"' && startString(true);
      case Mode.Colon:
        if (WS.has(c)) return true;
        if (c !== ":") return false;
        mode = Mode.Value;
        return true;
      case Mode.After:
        if (WS.has(c)) return true;
        if (c === ",") {
          mode = stack.at(-1) === "{" ? Mode.Key : Mode.Value;
          return true;
        }
        if (c === "}") return close("{");
        if (c === "]") return close("[");
        return false;
      case Mode.String:
        if (c === '"') {
          if (stringIsKey) mode = Mode.Colon;
          else valueEnded();
          return true;
        }
        if (c === "\\") mode = Mode.Escape;
        return c >= " ";
      case Mode.Escape:
        if (c === "u") {
          hexLeft = 4;
          mode = Mode.Hex;
          return true;
        }
        mode = Mode.String;
        return ESCAPES.has(c);
      case Mode.Hex:
        if (!HEX.test(c)) return false;
        if (--hexLeft === 0) mode = Mode.String;
        return true;
      case Mode.Number:
        if (NUMBER_CHARS.test(c)) return true;
        valueEnded();
        return step(c);
      case Mode.Literal:
        if (c !== literal[0]) return false;
        literal = literal.slice(1);
        if (literal === "") valueEnded();
        return true;
      default:
        return false;
    }
  }

  function open(bracket: string, next: Mode): boolean {
    stack.push(bracket);
    mode = next;
    return true;
  }

  function close(bracket: string): boolean {
    if (stack.pop() !== bracket) return false;
    valueEnded();
    return true;
  }

  function startString(isKey: boolean): boolean {
    stringIsKey = isKey;
    mode = Mode.String;
    return true;
  }

  return {
    feed(piece) {
      if (mode === Mode.Invalid) return JSON_INVALID;
      for (let i = 0; i < piece.length; i++) {
        if (!step(piece[i])) {
          mode = Mode.Invalid;
          return JSON_INVALID;
        }
        if (mode === Mode.Done) return i + 1;
      }
      return JSON_OPEN;
    },
  };
}
