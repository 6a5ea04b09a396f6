//! The dX of a strided convolution on small maps as one GEMM over the whole batch and a
//! scatter in standard operators, for ONNX Runtime's CPU EP (issue 16).
//!
//! ORT's ConvTranspose runs one GEMM per image, `[C·kh·kw, O] × [O, Ho·Wo]`; on the small
//! maps of a network's last stages (4×4 in ResNet50's at 100 px) that product is a few
//! columns wide and runs at a fraction of the GEMM rate. Here the whole batch is one
//! product: G's channels-last rows `[N·Ho·Wo, O]` (the rows its weight gradient already
//! reads) times the kernel as `[O, kh·kw·C]`. Row `(n, y, x)`, tap `(i, j)` of the result
//! lands on dX at `(s·y + i − p, s·x + j − p)`. Taps are grouped by the output phase
//! `((i − p) mod s, (j − p) mod s)` they land on; each is a shifted copy of one
//! `[N, Ho, Wo, C]` slice on that phase's grid, the phase sums interleave into dX
//! channels-last, and one Transpose gives NCHW. ORT's `Col2Im` would do the scatter in one
//! node but needs opset 18 (the step graph is 17, where ReduceMean's axes are attributes).

use ortl_onnx::builder::Gemm;
use std::collections::{BTreeMap, HashMap, HashSet};

use ortl_onnx::shapes::TypedShape;
use ortl_onnx::{Graph, GraphBuilder, Node, Tensor};

use crate::emit::reshape;

/// Strided ConvTransposes whose input has at most this many positions per map are rewritten:
/// ORT's per-image GEMM is that many columns wide. Profiled side by side in ResNet50's step,
/// the batch GEMM won at 16 positions (4×4, the last stage at 100 px) and lost at 49 (7×7);
/// the line is drawn between the two (measurements: bench/RESULTS.md and the history it
/// links).
pub const MAX_POSITIONS: i64 = 36;

/// Rewrites every eligible ConvTranspose of `graph` (ungrouped, undilated, strided, no bias,
/// maps of at most [`MAX_POSITIONS`]) in place; returns the dX values it wrote, each by a
/// `Transpose(·, [0, 3, 1, 2])` from channels-last. `shapes` are the graph's.
pub fn batch_gemm_dx(graph: &mut Graph, shapes: &HashMap<String, TypedShape>) -> HashSet<String> {
    let targets: Vec<(usize, Geometry)> = graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, node)| geometry(node, shapes).map(|g| (i, g)))
        .collect();
    let written = targets
        .iter()
        .map(|(index, _)| graph.nodes[*index].outputs[0].clone())
        .collect();
    let mut b = GraphBuilder::from_graph(std::mem::take(graph));
    for (index, geometry) in targets.iter().rev() {
        let mut index = *index;
        let node = b.graph().nodes[index].clone();
        // The weight gradient's channels-last G, which the GEMM shares, moves up to here
        // if it comes later (it reads only G, which exists here).
        let found = b
            .graph()
            .nodes
            .iter()
            .position(|n| is_rows_of(n, &node.inputs[0]));
        let rows = found.map(|k| {
            let rows = b.graph().nodes[k].outputs[0].clone();
            if k > index {
                let moved = b.graph_mut().nodes.remove(k);
                b.graph_mut().nodes.insert(index, moved);
                index += 1;
            }
            rows
        });
        let before = b.graph().nodes.len();
        b.scoped(&node.name, |b| emit(b, &node, rows, geometry));
        let graph = b.graph_mut();
        let added: Vec<Node> = graph.nodes.drain(before..).collect();
        graph.nodes.splice(index..=index, added);
    }
    *graph = b.finish();
    written
}

/// Sizes of one strided dX: G `[N, O, Ho, Wo]`, dX `[N, C, H, W]`, kernel, strides and the
/// forward convolution's top and left pads.
struct Geometry {
    o: i64,
    c: i64,
    input: [i64; 2],
    output: [i64; 2],
    kernel: [i64; 2],
    strides: [i64; 2],
    pads: [i64; 2],
}

fn geometry(node: &Node, shapes: &HashMap<String, TypedShape>) -> Option<Geometry> {
    let ones = |name: &str| node.ints(name).is_none_or(|v| v.iter().all(|&d| d == 1));
    if node.op != "ConvTranspose"
        || !node.domain.is_empty()
        || node.inputs.len() != 2
        || node.int("group").unwrap_or(1) != 1
        || !ones("dilations")
        || ones("strides")
        || node.attr("output_shape").is_some()
    {
        return None;
    }
    let dims = |value: &str| -> Option<[i64; 4]> {
        match shapes.get(value)?.shape.as_slice() {
            [n, Some(c), Some(h), Some(w)] => Some([n.unwrap_or(-1), *c, *h, *w]),
            _ => None,
        }
    };
    let [_, o, ho, wo] = dims(&node.inputs[0])?;
    let [_, c, h, w] = dims(&node.outputs[0])?;
    let [_, _, kh, kw] = dims(&node.inputs[1])?;
    let strides = node.ints("strides")?;
    let pads = node.ints("pads").unwrap_or(&[0, 0, 0, 0]);
    (ho * wo <= MAX_POSITIONS && strides.len() == 2 && pads.len() == 4).then(|| Geometry {
        o,
        c,
        input: [ho, wo],
        output: [h, w],
        kernel: [kh, kw],
        strides: [strides[0], strides[1]],
        pads: [pads[0], pads[1]],
    })
}

/// Whether `node` is the channels-last `Transpose(value, [0, 2, 3, 1])`.
fn is_rows_of(node: &Node, value: &str) -> bool {
    node.op == "Transpose" && node.inputs[0] == value && node.ints("perm") == Some(&[0, 2, 3, 1])
}

/// Where tap offset `i` of one axis lands: its phase and the shift from G's grid to the
/// phase's, `i − p = s·shift + phase`.
fn landing(i: i64, pad: i64, stride: i64) -> (i64, i64) {
    ((i - pad).rem_euclid(stride), (i - pad).div_euclid(stride))
}

/// Writes the batch GEMM and scatter for ConvTranspose `node`; `dy_rows` is G's channels-last
/// form where the graph already has it.
fn emit(b: &mut GraphBuilder, node: &Node, dy_rows: Option<String>, g: &Geometry) {
    let (dy, w) = (&node.inputs[0], &node.inputs[1]);
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.strides;
    let [ho, wo] = g.input;
    let [h, wd] = g.output;
    // Each phase's grid: ceil(H / s) rows, so the interleaved phases cover dX.
    let grid = [(h + sh - 1) / sh, (wd + sw - 1) / sw];
    let dy_rows = dy_rows.unwrap_or_else(|| b.transpose(dy, &[0, 2, 3, 1]));
    let rows = reshape(b, &dy_rows, &[-1, g.o]);
    let kernel = b.transpose(w, &[0, 2, 3, 1]);
    let kernel = reshape(b, &kernel, &[g.o, kh * kw * g.c]);
    let cols = b.gemm(&rows, &kernel, None, &Gemm::default());
    let cols = reshape(b, &cols, &[-1, ho, wo, kh * kw, g.c]);
    let taps = b.split(&cols, None, 3, (kh * kw) as usize);

    // Each tap shifted onto its phase's grid, `[N, grid_h, grid_w, 1, C]`.
    // Ordered maps: the nodes (and their names) come out the same in every run.
    let mut phases: BTreeMap<(i64, i64), Vec<String>> = BTreeMap::new();
    for (t, tap) in taps.iter().enumerate() {
        let (i, j) = (t as i64 / kw, t as i64 % kw);
        let (phase_y, shift_y) = landing(i, g.pads[0], sh);
        let (phase_x, shift_x) = landing(j, g.pads[1], sw);
        // Grid row m reads G row m − shift: keep the rows that land inside the grid.
        let keep = |shift: i64, size: i64, grid: i64| ((-shift).max(0), size.min(grid - shift));
        let (y0, y1) = keep(shift_y, ho, grid[0]);
        let (x0, x1) = keep(shift_x, wo, grid[1]);
        if y1 <= y0 || x1 <= x0 {
            continue;
        }
        let mut value = tap.clone();
        if (y0, y1, x0, x1) != (0, ho, 0, wo) {
            value = slice_spatial(b, &value, [y0, x0], [y1, x1]);
        }
        let before = [shift_y + y0, shift_x + x0];
        let after = [grid[0] - shift_y - y1, grid[1] - shift_x - x1];
        if before != [0, 0] || after != [0, 0] {
            let pads = b.constant(Tensor::i64s(&[
                0, before[0], before[1], 0, 0, 0, after[0], after[1], 0, 0,
            ]));
            value = b.pad(&value, &pads);
        }
        phases.entry((phase_y, phase_x)).or_default().push(value);
    }
    let mut sums: BTreeMap<(i64, i64), String> = phases
        .into_iter()
        .map(|(phase, values)| {
            let sum = match values.as_slice() {
                [one] => one.clone(),
                _ => {
                    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                    b.sum(&refs)
                }
            };
            (phase, sum)
        })
        .collect();
    // A phase no tap lands on (a kernel smaller than its stride) is zeros.
    let any = sums.values().next().expect("some tap lands in dX").clone();
    let mut zeros = None;
    let mut phase = |b: &mut GraphBuilder, key: (i64, i64)| match sums.remove(&key) {
        Some(sum) => sum,
        None => zeros
            .get_or_insert_with(|| {
                let shape = b.shape(&any);
                b.constant_of_shape(&shape, None)
            })
            .clone(),
    };

    // Interleave: [N, grid_h, s_h, grid_w, s_w, C] is dX channels-last, padded to whole grids.
    let mut rows_of_phases = Vec::new();
    for phase_y in 0..sh {
        let columns: Vec<String> = (0..sw)
            .map(|phase_x| phase(b, (phase_y, phase_x)))
            .collect();
        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        let row = match refs.as_slice() {
            [one] => one.to_string(),
            _ => b.concat(&refs, 3),
        };
        rows_of_phases.push(reshape(b, &row, &[-1, grid[0], 1, grid[1], sw, g.c]));
    }
    let refs: Vec<&str> = rows_of_phases.iter().map(String::as_str).collect();
    let interleaved = b.concat(&refs, 2);
    let mut dx = reshape(b, &interleaved, &[-1, grid[0] * sh, grid[1] * sw, g.c]);
    if grid[0] * sh != h || grid[1] * sw != wd {
        dx = slice_spatial(b, &dx, [0, 0], [h, wd]);
    }
    b.named(&node.outputs[0], |b| b.transpose(&dx, &[0, 3, 1, 2]));
}

/// Rows `starts[0]..ends[0]` and columns `starts[1]..ends[1]` of a channels-last value
/// (axes 1 and 2).
fn slice_spatial(b: &mut GraphBuilder, x: &str, starts: [i64; 2], ends: [i64; 2]) -> String {
    let starts = b.constant(Tensor::i64s(&starts));
    let ends = b.constant(Tensor::i64s(&ends));
    let axes = b.constant(Tensor::i64s(&[1, 2]));
    b.slice(x, &starts, &ends, Some(&axes), None)
}
