# Table 2, row "+S+Q+A" at 48 bits: the full QueryOpt.
_base_ = ['./queryopt_cub_48bit.py']
