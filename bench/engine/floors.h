// Floors: what the GPU itself charges for the fixed parts of an op's contract, measured in the same run
// as the kernels. The table's "x bound" compares a kernel with its DRAM bytes alone; for ops of a few
// microseconds, or ops whose work is random L2 requests, that bound is below what any kernel can reach,
// so each row also states the launches, host round trips and backward passes its contract forces and
// (for the hash grid) the random L2 traffic it must issue, and is compared with the largest of them.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace psd3d::bench {

struct Floors {
  double launch_ms = 0;  // one more kernel in a stream of back-to-back launches (empty kernel)
  double sync_ms = 0;    // a device→host round trip: a 2-element fill, its copy to the host, the wait
  double pass_ms = 0;    // one autograd backward pass of a 1-element op
};

// Measured on `device`; zeros on the CPU (the rows' CPU floors are their byte bounds).
Floors MeasureFloors(const at::Device& device);

// One hash-grid level as the floor kernels see it: its rows (table entries) and first row.
struct GatherLevel {
  int64_t rows = 0;
  int64_t offset = 0;
};

// Times, in ms, of kernels that issue only the L2 requests of a hash-grid encoding of `points` uniformly
// random points over `levels` (F = 2): per (point, level) 4 corner pairs at uniformly random rows of the
// level, two pairs as one 16-byte request and two as two 8-byte requests (tcnn's hash puts an x-pair in
// one 16-byte line for even x: 6 requests per point and level on average), and the coalesced output.
// gather = the forward's loads, summed and written level-major; scatter = a zero fill of the table and
// the backward's atomics of a coalesced, level-major upstream gradient. CUDA only (0 elsewhere).
struct GatherFloorMs {
  double gather = 0;
  double scatter = 0;
};
GatherFloorMs HashGridGatherFloor(int64_t points, const std::vector<GatherLevel>& levels, int64_t table_rows,
                                  const at::Device& device);

// A differentiable op's contract as the framework sees it: two differentiable inputs, outputs of given
// shapes and dtypes (the first `non_differentiable` carry no gradient), a forward scratch buffer, the
// kernels each direction launches, and the one zero-filled buffer the backward carves the inputs'
// gradients from (at least both inputs' sizes).
struct OpContract {
  at::Tensor input_a, input_b;
  std::vector<at::Tensor> outputs;  // templates: each call allocates tensors like them
  int non_differentiable = 0;
  std::vector<int> upstream;        // outputs that receive an upstream gradient
  int64_t scratch_bytes = 0;
  int forward_launches = 0, backward_launches = 0;  // besides the gradient buffer's zero fill
  int64_t grad_buffer_floats = 0;
};

// Time per call, in ms, of a torch::autograd::Function with that contract that does no work: `calls`
// of them, on their own leaves, into one torch::autograd::grad, timed as the engine rows time theirs.
// Its allocations, empty kernels, graph node and saved tensors are what any autograd op with that
// contract costs the host; with `calls` = 1 the backward pass's own start-up is in it too. CUDA only (0
// elsewhere).
double AutogradOpFloorMs(const OpContract& contract, int calls);

// Time, in ms, of a kernel that moves what the fused fragment pass must move for a triangle-id image
// `ids` [1,H,W] of `faces` [F,3] over `clip` [1,V,4] with attributes `attr` [1,V,C], and nothing else:
// per covered pixel its face's vertex ids, then its three clip rows and attribute rows (two dependent
// gathers, scattered at sector granularity as the pixels' triangles are), and every output written.
// Its L2 sector traffic, not the unique bytes, sets the pass's time. CUDA only (0 elsewhere).
double FragmentGatherFloorMs(const at::Tensor& clip, const at::Tensor& faces, const at::Tensor& ids,
                             const at::Tensor& attr);

}  // namespace psd3d::bench
