# Table 2's rows on the digits main job (CPU, minutes): "+S+Q+A" is
# ./queryopt_digits_12bit.py itself (d = 64, 96 / 12 = 8 branches). The
# rows above switch one part off each, as the CUB set does.
_base_ = ['./queryopt_digits_12bit.py']
