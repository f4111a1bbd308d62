# Table 2, row "+S+Q+A" at 32 bits: the full QueryOpt.
_base_ = ['./queryopt_cub_32bit.py']
