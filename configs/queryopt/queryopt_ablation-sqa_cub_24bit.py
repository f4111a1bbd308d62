# Table 2, row "+S+Q+A" at 24 bits: the full QueryOpt.
_base_ = ['./queryopt_cub_24bit.py']
