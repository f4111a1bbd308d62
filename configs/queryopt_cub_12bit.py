# QueryOpt on CUB-200-2011, 12 bits: the first command's path
# (python tools/train.py configs/queryopt_cub_12bit.py). The config itself
# lives with the method's others: configs/queryopt/.
_base_ = ['./queryopt/queryopt_cub_12bit.py']
