//! Batching: draws with replacement, epoch shuffling, contiguous reusable buffers.

use ganlab::data::{prefetch, Batch, Batcher, Sampling, Split, Values};

fn split(n: usize) -> Split {
    Split {
        values: Values::Floats((0..n * 4).map(|v| v as f32).collect()),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
        n,
        item_shape: vec![1, 2, 2],
    }
}

#[test]
fn with_replacement_is_uniform() {
    let mut b = Batcher::new(10, 100, Sampling::WithReplacement, 1).unwrap();
    let mut counts = [0usize; 10];
    for _ in 0..100 {
        for &i in b.next_indices() {
            counts[i] += 1;
        }
    }
    // 10,000 draws: each count is 1000 +- 3 sd (sd = 30).
    for c in counts {
        assert!((910..=1090).contains(&c), "{counts:?}");
    }
    assert!((b.epochs() - 1000.0).abs() < 1e-9);
}

#[test]
fn with_replacement_repeats_within_a_batch() {
    // 64 draws from 16 items cannot all differ.
    let mut b = Batcher::new(16, 64, Sampling::WithReplacement, 3).unwrap();
    let mut seen = b.next_indices().to_vec();
    seen.sort_unstable();
    seen.dedup();
    assert!(seen.len() < 64);
}

#[test]
fn epoch_shuffle_covers_each_index_once_per_epoch() {
    // 10 items in batches of 3: epochs straddle batches.
    let mut b = Batcher::new(10, 3, Sampling::EpochShuffle, 7).unwrap();
    let mut stream = Vec::new();
    for _ in 0..20 {
        let batch = b.next_indices();
        assert_eq!(batch.len(), 3);
        stream.extend_from_slice(batch);
    }
    let epochs: Vec<Vec<usize>> = stream.chunks_exact(10).map(<[usize]>::to_vec).collect();
    for epoch in &epochs {
        let mut sorted = epoch.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    }
    assert!(
        epochs.windows(2).any(|w| w[0] != w[1]),
        "reshuffled each epoch"
    );
    assert!((b.epochs() - 6.0).abs() < 1e-9);
}

#[test]
fn seeds_reproduce() {
    for sampling in [Sampling::WithReplacement, Sampling::EpochShuffle] {
        let draw = |seed| {
            let mut b = Batcher::new(50, 8, sampling, seed).unwrap();
            (0..5)
                .flat_map(|_| b.next_indices().to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(11), draw(11));
        assert_ne!(draw(11), draw(12));
    }
}

#[test]
fn batch_is_one_contiguous_reused_buffer() {
    let data = split(20);
    let mut b = Batcher::new(20, 5, Sampling::EpochShuffle, 0).unwrap();
    let mut batch = Batch::default();
    b.next_batch(&data, &mut batch).unwrap();
    assert_eq!(batch.shape, vec![5, 1, 2, 2]);
    assert_eq!(batch.images.len(), 20);
    // Item j of the batch is the split's item with that label/values.
    for j in 0..5 {
        let first = batch.images[j * 4] as usize / 4;
        assert_eq!(batch.images[j * 4..j * 4 + 4], *data.item(first));
        assert_eq!(batch.labels[j], data.labels[first]);
    }
    let ptr = batch.images.as_ptr();
    for _ in 0..10 {
        b.next_batch(&data, &mut batch).unwrap();
    }
    assert_eq!(
        batch.images.as_ptr(),
        ptr,
        "no reallocation between batches"
    );
}

#[test]
fn invalid_arguments_are_errors() {
    assert!(Batcher::new(0, 4, Sampling::EpochShuffle, 0).is_err());
    assert!(Batcher::new(4, 0, Sampling::WithReplacement, 0).is_err());
    let mut b = Batcher::new(4, 2, Sampling::EpochShuffle, 0).unwrap();
    let err = b.next_batch(&split(5), &mut Batch::default()).unwrap_err();
    assert!(err.to_string().contains("4 items"), "{err}");
}

#[test]
fn a_batch_becomes_one_tensor_on_the_device() {
    let split = Split {
        values: Values::Floats((0..12).map(|v| v as f32).collect()),
        labels: vec![0, 1, 2],
        n: 3,
        item_shape: vec![1, 2, 2],
    };
    let mut batch = Batch::default();
    batch.fill(&split, &[2, 0]);
    let t = batch.to_tensor(&ganlab::Device::Cpu).unwrap();
    assert_eq!(t.shape(), [2, 1, 2, 2]);
    assert_eq!(
        t.to_vec().unwrap(),
        vec![8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0]
    );
}

#[test]
fn skipping_continues_the_same_sequence() {
    for sampling in [Sampling::WithReplacement, Sampling::EpochShuffle] {
        let mut a = Batcher::new(50, 7, sampling, 9).unwrap();
        let seq: Vec<Vec<usize>> = (0..20).map(|_| a.next_indices().to_vec()).collect();
        let mut b = Batcher::new(50, 7, sampling, 9).unwrap();
        b.skip(12);
        assert_eq!(b.next_indices(), &seq[12][..]);
    }
}

#[test]
fn skipping_lands_where_drawing_does_at_any_distance_without_replaying() {
    for sampling in [Sampling::WithReplacement, Sampling::EpochShuffle] {
        // Skipping k batches gives the batch that k draws would have reached (epochs straddled).
        let mut drawn = Batcher::new(13, 5, sampling, 9).unwrap();
        for _ in 0..37 {
            drawn.next_indices();
        }
        let mut skipped = Batcher::new(13, 5, sampling, 9).unwrap();
        skipped.skip(37);
        assert_eq!(skipped.next_indices(), drawn.next_indices(), "{sampling:?}");
        // A resumed step of 10^15 (or a corrupt one near u64::MAX) costs no replay.
        let start = std::time::Instant::now();
        for far in [1_000_000_000_000_000, u64::MAX - 1] {
            let mut b = Batcher::new(13, 5, sampling, 9).unwrap();
            b.skip(far);
            assert!(b.next_indices().iter().all(|&i| i < 13), "{sampling:?}");
        }
        assert!(
            start.elapsed().as_secs_f64() < 1.0,
            "{sampling:?}: skipping replayed"
        );
    }
}

#[test]
fn prefetched_batches_come_in_the_batchers_order_and_the_thread_stops_with_the_body() {
    let data = split(10);
    let mut direct = Batcher::new(10, 3, Sampling::EpochShuffle, 9).unwrap();
    let mut expected = Vec::new();
    for _ in 0..8 {
        let mut b = Batch::default();
        direct.next_batch(&data, &mut b).unwrap();
        expected.push(b);
    }
    let batcher = Batcher::new(10, 3, Sampling::EpochShuffle, 9).unwrap();
    // Stops after 8 of an endless stream: returning must not wait on the drawing thread.
    let got = prefetch(batcher, &data, 2, |batches| {
        (0..8)
            .map(|_| {
                let b = batches.next_batch().unwrap();
                let copy = b.clone();
                batches.recycle(b);
                copy
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(got, expected);
    // A split the batcher was not made for: the error arrives in order, not as a hang.
    let batcher = Batcher::new(4, 2, Sampling::EpochShuffle, 0).unwrap();
    let err = prefetch(batcher, &data, 2, |batches| {
        batches.next_batch().unwrap_err()
    });
    assert!(err.to_string().contains("4 items"), "{err}");
}
