//! Executing a parsed template as Go's `text/template` does: variable scopes that end with
//! their control structure, `$x =` assigning to the variable in an enclosing scope, `with`
//! and `range` moving the dot, `break`/`continue`, `{{template}}` running a definition with a
//! fresh scope that holds only `$`, and `and`/`or` evaluating their arguments lazily (so
//! `and (gt (len $v) 0) (index $v 0)` never indexes an empty list). Pure.

use std::collections::HashMap;

use super::funcs::call;
use super::parse::{Node, Operand, Pipeline};
use super::value::Val;
use super::TemplateData;

/// How far `{{template}}` may nest. Go allows 100000; a Rust stack does not, and a template
/// that deep is a mistake either way.
const MAX_DEPTH: usize = 200;

pub(super) enum Stop {
    /// The template calls `query` with this text, whose result the caller has not given yet.
    NeedQuery(String),
    Error(String),
}

impl From<String> for Stop {
    fn from(e: String) -> Stop {
        Stop::Error(e)
    }
}

#[derive(PartialEq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

pub(super) struct Exec<'a> {
    pub data: &'a TemplateData,
    pub defs: &'a HashMap<String, Vec<Node>>,
    pub vars: Vec<(String, Val)>,
    pub out: String,
    pub depth: usize,
}

impl Exec<'_> {
    pub fn run(&mut self, nodes: &[Node], dot: &Val) -> Result<(), Stop> {
        self.walk(nodes, dot).map(|_| ())
    }

    fn walk(&mut self, nodes: &[Node], dot: &Val) -> Result<Flow, Stop> {
        for n in nodes {
            let flow = match n {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Normal
                }
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&v.print());
                    }
                    Flow::Normal
                }
                Node::If(p, then, otherwise) => {
                    let mark = self.vars.len();
                    let r = self
                        .pipeline(p, dot)
                        .and_then(|v| self.walk(if v.truthy() { then } else { otherwise }, dot));
                    self.vars.truncate(mark);
                    r?
                }
                Node::With(p, then, otherwise) => {
                    let mark = self.vars.len();
                    let r = self.pipeline(p, dot).and_then(|v| {
                        if v.truthy() {
                            self.walk(then, &v)
                        } else {
                            self.walk(otherwise, dot)
                        }
                    });
                    self.vars.truncate(mark);
                    r?
                }
                Node::Range(p, body, otherwise) => {
                    let mark = self.vars.len();
                    let r = self.range(p, body, otherwise, dot, mark);
                    self.vars.truncate(mark);
                    r?
                }
                Node::Template(name, p) => {
                    let body = self
                        .defs
                        .get(name)
                        .ok_or_else(|| format!("no such template {name:?}"))?;
                    let v = match p {
                        Some(p) => self.pipeline(p, dot)?,
                        None => Val::Nil,
                    };
                    if self.depth >= MAX_DEPTH {
                        return Err(format!("exceeded maximum template depth ({MAX_DEPTH})").into());
                    }
                    let outer = std::mem::replace(&mut self.vars, vec![("$".into(), v.clone())]);
                    self.depth += 1;
                    let r = self.walk(body, &v);
                    self.depth -= 1;
                    self.vars = outer;
                    r?;
                    Flow::Normal
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        p: &Pipeline,
        body: &[Node],
        otherwise: &[Node],
        dot: &Val,
        mark: usize,
    ) -> Result<Flow, Stop> {
        let items: Vec<(Val, Val)> = match self.pipeline(p, dot)? {
            Val::Samples(s) => s
                .into_iter()
                .enumerate()
                .map(|(i, x)| (Val::Int(i as i64), Val::Sample(x)))
                .collect(),
            Val::StrMap(m) => m
                .into_iter()
                .map(|(k, v)| (Val::Str(k), Val::Str(v)))
                .collect(),
            Val::AnyMap(m) => m.into_iter().map(|(k, v)| (Val::Str(k), v)).collect(),
            Val::Nil => Vec::new(),
            other => return Err(format!("range can't iterate over {}", other.print()).into()),
        };
        if items.is_empty() {
            return self.walk(otherwise, dot);
        }
        for (key, elem) in items {
            // `range $v :=` / `range $i, $v :=` declared their variables at `mark`;
            // `range $v =` assigns to a variable of an enclosing scope.
            let values = match p.decl.len() {
                2 => vec![key, elem.clone()],
                _ => vec![elem.clone()],
            };
            for (name, v) in p.decl.iter().zip(values) {
                self.set_var(name, v, (!p.assign).then_some(mark))?;
            }
            let inner = self.vars.len();
            let flow = self.walk(body, &elem);
            self.vars.truncate(inner);
            if flow? == Flow::Break {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Val) -> Result<Val, Stop> {
        let mut value: Option<Val> = None;
        for cmd in &p.cmds {
            value = Some(self.command(cmd, dot, value)?);
        }
        let value = value.unwrap_or(Val::Nil);
        for name in &p.decl {
            if p.assign {
                self.set_var(name, value.clone(), None)?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    /// Sets the innermost variable `name`, at or above `from` when given.
    fn set_var(&mut self, name: &str, v: Val, from: Option<usize>) -> Result<(), Stop> {
        let start = from.unwrap_or(0).min(self.vars.len());
        let slot = self.vars[start..].iter_mut().rev().find(|(n, _)| n == name);
        slot.ok_or_else(|| format!("undefined variable: {name}"))?.1 = v;
        Ok(())
    }

    fn command(&mut self, cmd: &[Operand], dot: &Val, piped: Option<Val>) -> Result<Val, Stop> {
        match &cmd[0] {
            Operand::Func(name) => self.call(name, &cmd[1..], dot, piped),
            Operand::Nil => Err("nil is not a command".to_string().into()),
            first if cmd.len() == 1 && piped.is_none() => self.operand(first, dot),
            _ => Err("can't give argument to non-function".to_string().into()),
        }
    }

    fn operand(&mut self, o: &Operand, dot: &Val) -> Result<Val, Stop> {
        let fields = |mut v: Val, fs: &[String]| -> Result<Val, Stop> {
            for f in fs {
                v = v.field(f)?;
            }
            Ok(v)
        };
        match o {
            Operand::Str(s) => Ok(Val::Str(s.clone())),
            Operand::Int(i) => Ok(Val::Int(*i)),
            Operand::Float(f) => Ok(Val::Float(*f)),
            Operand::Bool(b) => Ok(Val::Bool(*b)),
            Operand::Nil => Ok(Val::Nil),
            Operand::Dot => Ok(dot.clone()),
            Operand::Field(fs) => fields(dot.clone(), fs),
            Operand::Var(name, fs) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| format!("undefined variable: {name}"))?;
                fields(v, fs)
            }
            Operand::Func(name) => self.call(name, &[], dot, None),
            Operand::Paren(p, fs) => {
                let v = self.pipeline(p, dot)?;
                fields(v, fs)
            }
        }
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Operand],
        dot: &Val,
        piped: Option<Val>,
    ) -> Result<Val, Stop> {
        if name == "and" || name == "or" {
            if args.is_empty() && piped.is_none() {
                return Err(
                    format!("wrong number of args for {name}: want at least 1 got 0").into(),
                );
            }
            let mut last = Val::Nil;
            for a in args {
                last = self.operand(a, dot)?;
                if last.truthy() != (name == "and") {
                    return Ok(last);
                }
            }
            return Ok(piped.unwrap_or(last));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.operand(a, dot)?);
        }
        vals.extend(piped);
        call(self.data, name, vals)
    }
}
