# Table 2, row "+S+Q+A" (subtle feature extractor, query learning,
# auxiliary branches): the full QueryOpt, i.e. ./queryopt_cub_12bit.py under
# the ablation's name (its runs are gathered as Table 2's last row). The
# rows above switch one part off each: ./queryopt_ablation-sq_cub_12bit.py.
_base_ = ['./queryopt_cub_12bit.py']
