# QueryOpt on CUB-200-2011, 12 bits: the paper's recipe and numerics (fp32,
# batch 16, the same optimiser and round schedule as queryopt_cub_12bit.py),
# with overhead removed only:
# - CUDA graphs: the runner compiles train_step with torch.compile's
#   'reduce-overhead' mode (a batch of 16 is too small to keep a GPU busy
#   from Python; the graphs replay the kernels without the launch cost);
# - the round cache (on in every dataset config) and more loader workers.
# SpeedSwitchHook checks compile here first: without a working compiler the
# run goes on eager and says so. See docs/speed.md for the measurements.
_base_ = ['./queryopt_cub_12bit.py']

compile = dict(mode='reduce-overhead')
train_dataloader = dict(num_workers=8, pin_memory=True)
custom_hooks = _base_.custom_hooks + [dict(type='SpeedSwitchHook')]
