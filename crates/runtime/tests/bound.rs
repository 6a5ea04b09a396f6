//! Ping-pong state bound with IoBinding: each run reads the current state and the next value
//! becomes current; a run without update, a failed run and a mis-shaped write leave it alone.

use ndarray::{ArrayD, IxDyn, arr1};
use ortl_onnx::{DataType, Dim, GraphBuilder, Model};
use ortl_runtime::{Device, Feed, PingPong, SessionOptions, StateTensor, Update};

/// state' = state·k + x (x: `[3]`), and y = Σ state (the read-out before the update).
fn accumulator() -> Vec<u8> {
    let mut b = GraphBuilder::new("acc");
    let fixed = || vec![Dim::Fixed(3)];
    let x = b.input("x", DataType::Float, fixed());
    let state = b.input("state", DataType::Float, fixed());
    let k = b.input("k", DataType::Float, vec![]);
    let scaled = b.mul(&state, &k);
    b.named("state.next", |b| b.add(&scaled, &x));
    b.output("state.next", DataType::Float, fixed());
    let y = b.reduce_sum(&state, None, true);
    b.output(&y, DataType::Float, vec![Dim::Fixed(1)]);
    ortl_onnx::io::to_bytes(&Model::new(b.finish()))
}

fn feeds(x: [f32; 3], k: f32) -> Vec<(&'static str, Feed)> {
    vec![
        ("x", Feed::F32(arr1(&x).into_dyn())),
        ("k", Feed::F32(ArrayD::from_elem(IxDyn(&[]), k))),
    ]
}

#[test]
fn state_stays_bound_and_swaps_after_each_run() {
    let runtime = ortl_runtime::init(None).expect("run 'make setup' first");
    let mut session = runtime
        .load(&SessionOptions::default(), &accumulator())
        .unwrap();
    let mut state = PingPong::new(
        &session,
        Device::Cpu,
        vec![StateTensor {
            input: "state".into(),
            output: "state.next".into(),
            value: arr1(&[1.0f32, 2.0, 3.0]).into_dyn(),
            update: Update::Next,
            output_shape: None,
        }],
    )
    .unwrap();
    assert_eq!(state.names(), ["state"]);

    let out = state
        .run(&mut session, feeds([1.0, 1.0, 1.0], 2.0))
        .unwrap();
    let y = out.values().next().unwrap();
    assert_eq!(
        y.iter().copied().collect::<Vec<_>>(),
        [6.0],
        "read-out of the old state"
    );
    assert_eq!(state.read(0).unwrap(), arr1(&[3.0f32, 5.0, 7.0]).into_dyn());

    // Second run reads what the first wrote (the buffers swapped).
    state
        .run(&mut session, feeds([0.0, 0.0, 1.0], 1.0))
        .unwrap();
    assert_eq!(state.read(0).unwrap(), arr1(&[3.0f32, 5.0, 8.0]).into_dyn());

    // A run without update computes from the state and leaves it as it was.
    let out = state
        .run_without_update(&mut session, feeds([9.0, 9.0, 9.0], 5.0))
        .unwrap();
    assert_eq!(out.values().next().unwrap().iter().sum::<f32>(), 16.0);
    assert_eq!(state.read(0).unwrap(), arr1(&[3.0f32, 5.0, 8.0]).into_dyn());

    // A failed run (a feed of the wrong rank) leaves the state as it was.
    let bad = vec![
        ("x", Feed::F32(ArrayD::zeros(IxDyn(&[2, 3])))),
        ("k", Feed::F32(ArrayD::from_elem(IxDyn(&[]), 1.0))),
    ];
    assert!(state.run(&mut session, bad).is_err());
    assert_eq!(state.read(0).unwrap(), arr1(&[3.0f32, 5.0, 8.0]).into_dyn());

    // Writes replace the current value; a wrong shape is refused by name.
    state
        .write(0, arr1(&[0.0f32, 0.0, 0.0]).into_dyn().view())
        .unwrap();
    state
        .run(&mut session, feeds([1.0, 2.0, 3.0], 1.0))
        .unwrap();
    assert_eq!(state.read(0).unwrap(), arr1(&[1.0f32, 2.0, 3.0]).into_dyn());
    let err = state
        .write(0, ArrayD::<f32>::zeros(IxDyn(&[4])).view())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("state") && err.contains("[3]") && err.contains("[4]"),
        "{err}"
    );
}

#[test]
fn a_host_updated_tensor_keeps_its_buffer_and_exposes_what_the_run_wrote() {
    let runtime = ortl_runtime::init(None).expect("run 'make setup' first");
    let mut session = runtime
        .load(&SessionOptions::default(), &accumulator())
        .unwrap();
    let tensor = || StateTensor {
        input: "state".into(),
        output: "state.next".into(),
        value: arr1(&[1.0f32, 2.0, 3.0]).into_dyn(),
        update: Update::Host,
        output_shape: None,
    };
    let mut state = PingPong::new(&session, Device::Cpu, vec![tensor()]).unwrap();
    state
        .run(&mut session, feeds([1.0, 1.0, 1.0], 2.0))
        .unwrap();
    // The run wrote state·k + x apart; the state itself is the host's to change.
    assert_eq!(state.read(0).unwrap(), arr1(&[1.0f32, 2.0, 3.0]).into_dyn());
    for (value, written) in state.host_updates() {
        assert_eq!(written, [3.0, 5.0, 7.0]);
        value[2] -= written[2];
    }
    assert_eq!(
        state.read(0).unwrap(),
        arr1(&[1.0f32, 2.0, -4.0]).into_dyn()
    );
    // The next run reads the value the host left.
    let out = state
        .run(&mut session, feeds([0.0, 0.0, 0.0], 1.0))
        .unwrap();
    assert_eq!(out.values().next().unwrap().iter().sum::<f32>(), -1.0);
    assert_eq!(state.host_updates()[0].1, [1.0, 2.0, -4.0]);

    // Device memory cannot be updated by the host: refused by name before allocating.
    let err = PingPong::new(&session, Device::Cuda(0), vec![tensor()])
        .err()
        .expect("a host update off the CPU is refused")
        .to_string();
    assert!(err.contains("state") && err.contains("cuda"), "{err}");
}
