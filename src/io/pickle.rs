//! A restricted, safe pickle reader for exactly one thing: the NumPy object
//! arrays of integer lists that Keras caches its datasets in (`x_train` of
//! `imdb.npz` / `reuters.npz`, saved with `np.save(allow_pickle=True)`).
//!
//! Such a pickle calls `numpy.core.multiarray._reconstruct` (or
//! `numpy._core.multiarray._reconstruct`) with the `numpy.ndarray` class,
//! builds a `numpy.dtype('O8')`, and sets the array's state to a tuple whose
//! last item is a list of Python lists of ints. This reader runs the pickle
//! opcodes of protocols 0 (binary subset) to 5 that such a stream uses, on a
//! stack of plain values; it imports nothing and calls nothing. Any other
//! global, opcode or structure is an error naming it and its byte offset.
//! Nesting and expansion are bounded so a hostile stream cannot exhaust the
//! stack or memory.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use crate::{Error, Result};

/// The only callables a stream may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    Reconstruct,
    NdArray,
    Dtype,
    CodecsEncode,
}

/// A value on the pickle stack. Lists live in an arena (so they can be
/// mutated through the memo, as pickle requires) and tuples are shared, so
/// memo lookups are O(1) and nothing is deeply recursive.
#[derive(Debug, Clone)]
enum V {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    Bytes,
    Tuple(Rc<Vec<V>>, usize),
    List(usize),
    Global(Global),
    Array(usize),
    DtypeObj(String),
}

impl V {
    fn kind(&self) -> &'static str {
        match self {
            V::None => "None",
            V::Bool(_) => "a bool",
            V::Int(_) => "an int",
            V::Str(_) => "a str",
            V::Bytes => "bytes",
            V::Tuple(..) => "a tuple",
            V::List(_) => "a list",
            V::Global(_) => "a global",
            V::Array(_) => "an ndarray",
            V::DtypeObj(_) => "a dtype",
        }
    }

    fn depth(&self) -> usize {
        match self {
            V::Tuple(_, d) => *d,
            _ => 0,
        }
    }
}

#[derive(Debug, Default)]
struct Arr {
    shape: Vec<usize>,
    dtype: Option<String>,
    fortran: bool,
    data: Option<V>,
    built: bool,
}

const MAX_TUPLE_DEPTH: usize = 32;

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    path: &'a Path,
    stack: Vec<V>,
    marks: Vec<usize>,
    memo: HashMap<u32, V>,
    lists: Vec<Vec<V>>,
    arrays: Vec<Arr>,
}

/// Unpickles `data` — the pickled object array of an `.npy` member whose data
/// starts at byte `base` of its file — into one `Vec<i64>` per array row.
///
/// A 1-D object array of lists (or tuples) of ints gives one row per list; a
/// 2-D object array of ints (what `np.array(..., dtype=object)` makes from
/// lists of equal length) gives one row per array row.
pub fn unpickle_int_sequences(data: &[u8], base: usize, path: &Path) -> Result<Vec<Vec<i64>>> {
    let mut vm = Vm {
        data,
        pos: 0,
        base,
        path,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        lists: Vec::new(),
        arrays: Vec::new(),
    };
    let top = vm.run()?;
    vm.to_sequences(top)
}

impl<'a> Vm<'a> {
    fn err<T>(&self, at: usize, msg: impl std::fmt::Display) -> Result<T> {
        Err(Error::file(
            self.path,
            format!("pickle at byte {}: {msg}", self.base + at),
        ))
    }

    fn take(&mut self, n: usize, op_at: usize) -> Result<&'a [u8]> {
        let data = self.data;
        match self.pos.checked_add(n) {
            Some(end) if end <= data.len() => {
                let s = &data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => self.err(
                op_at,
                format!(
                    "truncated: the opcode needs {n} more bytes, {} remain",
                    data.len().saturating_sub(self.pos)
                ),
            ),
        }
    }

    fn u8(&mut self, at: usize) -> Result<u8> {
        Ok(self.take(1, at)?[0])
    }

    fn u16(&mut self, at: usize) -> Result<u16> {
        let b = self.take(2, at)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, at: usize) -> Result<u32> {
        let b = self.take(4, at)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64_len(&mut self, at: usize) -> Result<usize> {
        let b = self.take(8, at)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        usize::try_from(u64::from_le_bytes(a)).or_else(|_| self.err(at, "length too large"))
    }

    fn line(&mut self, at: usize) -> Result<String> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let s = String::from_utf8_lossy(&rest[..i]).into_owned();
                self.pos += i + 1;
                Ok(s)
            }
            None => self.err(at, "truncated: GLOBAL name has no newline"),
        }
    }

    fn pop(&mut self, at: usize, op: &str) -> Result<V> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err(at, format!("{op} on an empty stack"));
        }
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.err(at, format!("{op} on an empty stack")),
        }
    }

    fn pop_mark(&mut self, at: usize, op: &str) -> Result<Vec<V>> {
        match self.marks.pop() {
            Some(m) if m <= self.stack.len() => Ok(self.stack.split_off(m)),
            _ => self.err(at, format!("{op} without a MARK")),
        }
    }

    fn tuple(&self, items: Vec<V>, at: usize) -> Result<V> {
        let depth = 1 + items.iter().map(V::depth).max().unwrap_or(0);
        if depth > MAX_TUPLE_DEPTH {
            return self.err(at, "tuples nested too deeply");
        }
        Ok(V::Tuple(Rc::new(items), depth))
    }

    fn str_value(&mut self, len: usize, at: usize, what: &str) -> Result<V> {
        let b = self.take(len, at)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(V::Str(s.to_string())),
            Err(_) => self.err(at, format!("{what} is not UTF-8")),
        }
    }

    fn latin1_value(&mut self, len: usize, at: usize) -> Result<V> {
        let b = self.take(len, at)?;
        Ok(V::Str(b.iter().map(|&c| c as char).collect()))
    }

    fn bytes_value(&mut self, len: usize, at: usize) -> Result<V> {
        // Bytes are kept only by length; their content is never needed.
        self.take(len, at)?;
        Ok(V::Bytes)
    }

    fn long(&mut self, len: usize, at: usize) -> Result<V> {
        let b = self.take(len, at)?;
        if len == 0 {
            return Ok(V::Int(0));
        }
        let negative = b[len - 1] & 0x80 != 0;
        // Significant bytes beyond 8 must be pure sign extension.
        let fill = if negative { 0xff } else { 0 };
        if len > 8 && b[8..].iter().any(|&x| x != fill) {
            return self.err(at, format!("integer of {len} bytes does not fit in i64"));
        }
        let mut a = [fill; 8];
        for (i, slot) in a.iter_mut().enumerate().take(len.min(8)) {
            *slot = b[i];
        }
        let v = i64::from_le_bytes(a);
        if len > 8 && ((v < 0) != negative) {
            return self.err(at, format!("integer of {len} bytes does not fit in i64"));
        }
        Ok(V::Int(v))
    }

    fn global(&self, module: &str, name: &str, at: usize) -> Result<V> {
        let g = match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Global::Reconstruct
            }
            ("numpy", "ndarray") => Global::NdArray,
            ("numpy", "dtype") => Global::Dtype,
            ("_codecs", "encode") => Global::CodecsEncode,
            _ => {
                return self.err(
                    at,
                    format!("refusing global {module}.{name} (only a NumPy object array of int lists is read)"),
                )
            }
        };
        Ok(V::Global(g))
    }

    fn memo_put(&mut self, key: u32, at: usize) -> Result<()> {
        match self.stack.last() {
            Some(v) => {
                let v = v.clone();
                self.memo.insert(key, v);
                Ok(())
            }
            None => self.err(at, "memo store with an empty stack"),
        }
    }

    fn memo_get(&mut self, key: u32, at: usize) -> Result<()> {
        match self.memo.get(&key) {
            Some(v) => {
                let v = v.clone();
                self.stack.push(v);
                Ok(())
            }
            None => self.err(at, format!("memo key {key} was never stored")),
        }
    }

    fn append(&mut self, list: &V, items: Vec<V>, at: usize, op: &str) -> Result<()> {
        match list {
            V::List(i) => {
                self.lists[*i].extend(items);
                Ok(())
            }
            other => self.err(at, format!("{op} to {} (expected a list)", other.kind())),
        }
    }

    fn reduce(&mut self, callable: V, args: V, at: usize) -> Result<V> {
        let V::Tuple(args, _) = args else {
            return self.err(at, format!("REDUCE with {} for arguments", args.kind()));
        };
        match callable {
            V::Global(Global::Reconstruct) => match args.as_slice() {
                [V::Global(Global::NdArray), V::Tuple(..), _] => {
                    self.arrays.push(Arr::default());
                    Ok(V::Array(self.arrays.len() - 1))
                }
                _ => self.err(at, "_reconstruct called with unexpected arguments"),
            },
            V::Global(Global::Dtype) => match args.first() {
                Some(V::Str(s)) => Ok(V::DtypeObj(s.clone())),
                _ => self.err(at, "dtype called with unexpected arguments"),
            },
            V::Global(Global::CodecsEncode) => match args.as_slice() {
                [V::Str(_), V::Str(enc)] if enc == "latin1" || enc == "latin-1" => Ok(V::Bytes),
                _ => self.err(at, "_codecs.encode called with unexpected arguments"),
            },
            other => self.err(
                at,
                format!("REDUCE on {} (not an allowed callable)", other.kind()),
            ),
        }
    }

    fn build(&mut self, target: &V, state: V, at: usize) -> Result<()> {
        match target {
            V::DtypeObj(_) => Ok(()),
            V::Array(i) => {
                let i = *i;
                let V::Tuple(items, _) = state else {
                    return self.err(
                        at,
                        format!("ndarray state is {}, expected a tuple", state.kind()),
                    );
                };
                let items: &[V] = match items.len() {
                    5 => &items[1..],
                    4 => &items[..],
                    n => {
                        return self
                            .err(at, format!("ndarray state has {n} items, expected 4 or 5"))
                    }
                };
                let shape = match &items[0] {
                    V::Tuple(dims, _) => {
                        let mut s = Vec::with_capacity(dims.len());
                        for d in dims.iter() {
                            match d {
                                V::Int(n) if *n >= 0 => s.push(*n as usize),
                                _ => {
                                    return self
                                        .err(at, "ndarray shape holds a non-integer or negative")
                                }
                            }
                        }
                        s
                    }
                    other => return self.err(at, format!("ndarray shape is {}", other.kind())),
                };
                let dtype = match &items[1] {
                    V::DtypeObj(d) => d.clone(),
                    other => return self.err(at, format!("ndarray dtype is {}", other.kind())),
                };
                let fortran = matches!(items[2], V::Bool(true) | V::Int(1));
                let arr = &mut self.arrays[i];
                arr.shape = shape;
                arr.dtype = Some(dtype);
                arr.fortran = fortran;
                arr.data = Some(items[3].clone());
                arr.built = true;
                Ok(())
            }
            other => self.err(
                at,
                format!(
                    "BUILD on {} (only ndarray and dtype are built)",
                    other.kind()
                ),
            ),
        }
    }

    fn run(&mut self) -> Result<V> {
        loop {
            let at = self.pos;
            let op = match self.data.get(self.pos) {
                Some(&op) => op,
                None => return self.err(at, "truncated: no STOP opcode"),
            };
            self.pos += 1;
            match op {
                0x80 => {
                    let proto = self.u8(at)?;
                    if proto > 5 {
                        return self.err(at, format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.u64_len(at)?;
                }
                b'.' => {
                    let v = self.pop(at, "STOP")?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return self.err(at, "STOP with values left on the stack");
                    }
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.stack.push(V::None),
                0x88 => self.stack.push(V::Bool(true)),
                0x89 => self.stack.push(V::Bool(false)),
                b'K' => {
                    let v = self.u8(at)?;
                    self.stack.push(V::Int(v as i64));
                }
                b'M' => {
                    let v = self.u16(at)?;
                    self.stack.push(V::Int(v as i64));
                }
                b'J' => {
                    let v = self.u32(at)? as i32;
                    self.stack.push(V::Int(v as i64));
                }
                0x8a => {
                    let n = self.u8(at)? as usize;
                    let v = self.long(n, at)?;
                    self.stack.push(v);
                }
                0x8b => {
                    let n = self.u32(at)? as usize;
                    let v = self.long(n, at)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = self.u8(at)? as usize;
                    let v = self.str_value(n, at, "SHORT_BINUNICODE")?;
                    self.stack.push(v);
                }
                b'X' => {
                    let n = self.u32(at)? as usize;
                    let v = self.str_value(n, at, "BINUNICODE")?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = self.u64_len(at)?;
                    let v = self.str_value(n, at, "BINUNICODE8")?;
                    self.stack.push(v);
                }
                b'U' => {
                    let n = self.u8(at)? as usize;
                    let v = self.latin1_value(n, at)?;
                    self.stack.push(v);
                }
                b'T' => {
                    let n = self.u32(at)? as usize;
                    let v = self.latin1_value(n, at)?;
                    self.stack.push(v);
                }
                b'C' => {
                    let n = self.u8(at)? as usize;
                    let v = self.bytes_value(n, at)?;
                    self.stack.push(v);
                }
                b'B' => {
                    let n = self.u32(at)? as usize;
                    let v = self.bytes_value(n, at)?;
                    self.stack.push(v);
                }
                0x8e => {
                    let n = self.u64_len(at)?;
                    let v = self.bytes_value(n, at)?;
                    self.stack.push(v);
                }
                b'c' => {
                    let module = self.line(at)?;
                    let name = self.line(at)?;
                    let g = self.global(&module, &name, at)?;
                    self.stack.push(g);
                }
                0x93 => {
                    let name = self.pop(at, "STACK_GLOBAL")?;
                    let module = self.pop(at, "STACK_GLOBAL")?;
                    let (V::Str(module), V::Str(name)) = (module, name) else {
                        return self.err(at, "STACK_GLOBAL needs two strings");
                    };
                    let g = self.global(&module, &name, at)?;
                    self.stack.push(g);
                }
                b']' => {
                    self.lists.push(Vec::new());
                    self.stack.push(V::List(self.lists.len() - 1));
                }
                b'l' => {
                    let items = self.pop_mark(at, "LIST")?;
                    self.lists.push(items);
                    self.stack.push(V::List(self.lists.len() - 1));
                }
                b')' => {
                    let t = self.tuple(Vec::new(), at)?;
                    self.stack.push(t);
                }
                b't' => {
                    let items = self.pop_mark(at, "TUPLE")?;
                    let t = self.tuple(items, at)?;
                    self.stack.push(t);
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(at, "TUPLEn")?);
                    }
                    items.reverse();
                    let t = self.tuple(items, at)?;
                    self.stack.push(t);
                }
                b'a' => {
                    let item = self.pop(at, "APPEND")?;
                    let list = self.pop(at, "APPEND")?;
                    self.append(&list, vec![item], at, "APPEND")?;
                    self.stack.push(list);
                }
                b'e' => {
                    let items = self.pop_mark(at, "APPENDS")?;
                    let list = self.pop(at, "APPENDS")?;
                    self.append(&list, items, at, "APPENDS")?;
                    self.stack.push(list);
                }
                b'R' => {
                    let args = self.pop(at, "REDUCE")?;
                    let callable = self.pop(at, "REDUCE")?;
                    let v = self.reduce(callable, args, at)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop(at, "BUILD")?;
                    let target = self.pop(at, "BUILD")?;
                    self.build(&target, state, at)?;
                    self.stack.push(target);
                }
                b'q' => {
                    let k = self.u8(at)? as u32;
                    self.memo_put(k, at)?;
                }
                b'r' => {
                    let k = self.u32(at)?;
                    self.memo_put(k, at)?;
                }
                0x94 => {
                    let k = u32::try_from(self.memo.len())
                        .or_else(|_| self.err(at, "memo too large"))?;
                    self.memo_put(k, at)?;
                }
                b'h' => {
                    let k = self.u8(at)? as u32;
                    self.memo_get(k, at)?;
                }
                b'j' => {
                    let k = self.u32(at)?;
                    self.memo_get(k, at)?;
                }
                other => {
                    return self.err(
                        at,
                        format!(
                            "unsupported opcode {} (0x{other:02x}); only a NumPy object array of int lists is read",
                            opcode_name(other)
                        ),
                    )
                }
            }
        }
    }

    fn int_row(&self, v: &V, what: &str) -> Result<Vec<i64>> {
        let items: &[V] = match v {
            V::List(i) => &self.lists[*i],
            V::Tuple(t, _) => t,
            other => {
                return self.err(
                    self.data.len(),
                    format!("{what} is {}, expected a list of ints", other.kind()),
                )
            }
        };
        items
            .iter()
            .enumerate()
            .map(|(j, x)| match x {
                V::Int(n) => Ok(*n),
                V::Bool(b) => Ok(*b as i64),
                other => self.err(
                    self.data.len(),
                    format!("{what}, item {j} is {}, expected an int", other.kind()),
                ),
            })
            .collect()
    }

    fn to_sequences(&self, top: V) -> Result<Vec<Vec<i64>>> {
        let end = self.data.len();
        let V::Array(i) = top else {
            return self.err(
                end,
                format!("the pickle holds {}, not an ndarray", top.kind()),
            );
        };
        let arr = &self.arrays[i];
        if !arr.built {
            return self.err(end, "the ndarray was never given its state (no BUILD)");
        }
        let dtype = arr.dtype.as_deref().unwrap_or("");
        if !dtype.starts_with('O') {
            return self.err(
                end,
                format!("pickled ndarray has dtype '{dtype}', expected an object array"),
            );
        }
        let Some(V::List(data)) = &arr.data else {
            return self.err(end, "object ndarray data is not a list");
        };
        let items = &self.lists[*data];
        // Shared lists can make the output larger than the stream; bound it.
        let limit = self.data.len().saturating_mul(4).saturating_add(1024);
        let mut total = 0usize;
        let mut check = |n: usize| -> Result<()> {
            total = total.saturating_add(n);
            if total > limit {
                return self.err(end, format!("expands to more than {limit} integers"));
            }
            Ok(())
        };
        match arr.shape.as_slice() {
            [n] => {
                if items.len() != *n {
                    return self.err(end, format!("shape ({n},) but {} items", items.len()));
                }
                let mut rows = Vec::with_capacity(items.len());
                for (r, v) in items.iter().enumerate() {
                    let row = self.int_row(v, &format!("row {r}"))?;
                    check(row.len())?;
                    rows.push(row);
                }
                Ok(rows)
            }
            [n, m] => {
                if arr.fortran {
                    return self.err(end, "fortran-order object array");
                }
                if n.checked_mul(*m) != Some(items.len()) {
                    return self.err(end, format!("shape ({n}, {m}) but {} items", items.len()));
                }
                let flat = self.int_row(&V::List(*data), "2-D object array")?;
                check(flat.len())?;
                // A (n, 0) array has no items to bound n: count its rows.
                if *m == 0 {
                    check(*n)?;
                }
                Ok(if *m == 0 {
                    vec![Vec::new(); *n]
                } else {
                    flat.chunks(*m).map(|c| c.to_vec()).collect()
                })
            }
            s => self.err(end, format!("object array of shape {s:?}: only 1-D arrays of lists or 2-D arrays of ints are read")),
        }
    }
}

/// The pickle name of an opcode this reader does not run, for messages.
fn opcode_name(op: u8) -> String {
    let name = match op {
        b'}' => "EMPTY_DICT",
        b'd' => "DICT",
        b's' => "SETITEM",
        b'u' => "SETITEMS",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'G' => "BINFLOAT",
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'g' => "GET",
        b'p' => "PUT",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ if op.is_ascii_graphic() => return format!("'{}'", op as char),
        _ => "(unknown)",
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(b: &[u8]) -> Result<Vec<Vec<i64>>> {
        unpickle_int_sequences(b, 0, Path::new("mem.npy"))
    }

    /// protocol-3 object array [[1, 300], [-2]] as numpy writes it, by hand.
    fn sample() -> Vec<u8> {
        let mut b = vec![0x80, 3];
        b.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\nq\x00");
        b.extend_from_slice(b"cnumpy\nndarray\nq\x01K\x00\x85q\x02C\x01bq\x03\x87q\x04Rq\x05");
        b.extend_from_slice(b"(K\x01K\x02\x85cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R");
        b.extend_from_slice(b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb");
        b.extend_from_slice(b"\x89](]q\x06(K\x01M\x2c\x01e]J\xfe\xff\xff\xffaetb.");
        b
    }

    #[test]
    fn hand_written_stream() {
        assert_eq!(run(&sample()).unwrap(), vec![vec![1, 300], vec![-2]]);
    }

    /// Python 2's numpy wrote `str` objects as SHORT_BINSTRING.
    #[test]
    fn python2_strings() {
        let s = sample();
        let mut py2 = Vec::new();
        let mut i = 0;
        while i < s.len() {
            if s[i..].starts_with(b"C\x01b") {
                py2.extend_from_slice(b"U\x01b");
                i += 3;
            } else if s[i..].starts_with(b"X\x02\x00\x00\x00O8") {
                py2.extend_from_slice(b"U\x02O8");
                i += 7;
            } else {
                py2.push(s[i]);
                i += 1;
            }
        }
        assert!(py2.len() < s.len());
        assert_eq!(run(&py2).unwrap(), vec![vec![1, 300], vec![-2]]);
    }

    #[test]
    fn truncations_and_corruptions_are_errors() {
        let s = sample();
        for n in 0..s.len() {
            assert!(run(&s[..n]).is_err(), "prefix {n}");
        }
        for i in 0..s.len() {
            for x in [0u8, 0x7f, 0xff, b'(', b'R', b'b', b'.'] {
                let mut c = s.clone();
                c[i] = x;
                let _ = run(&c); // must not panic
            }
        }
    }

    #[test]
    fn refuses_other_globals() {
        let e = run(b"\x80\x02cos\nsystem\nq\x00.").unwrap_err().to_string();
        assert!(
            e.contains("refusing global os.system") && e.contains("byte 2"),
            "{e}"
        );
        let e = run(b"\x80\x02\x00").unwrap_err().to_string();
        assert!(
            e.contains("unsupported opcode (unknown) (0x00)") && e.contains("byte 2"),
            "{e}"
        );
    }

    #[test]
    fn deep_tuples_are_bounded() {
        let mut b = vec![0x80, 2, b')'];
        b.extend(std::iter::repeat_n(0x85u8, 100_000));
        b.push(b'.');
        let e = run(&b).unwrap_err().to_string();
        assert!(e.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn big_longs() {
        let mut vm_bytes = vec![0x80, 2, 0x8a, 9];
        vm_bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1]);
        vm_bytes.push(b'.');
        let e = run(&vm_bytes).unwrap_err().to_string();
        assert!(e.contains("does not fit in i64"), "{e}");
    }
}
