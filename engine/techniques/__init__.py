"""The techniques the training loops call once each: augmentation, covariate-shift weights, the unlabeled-data term, ensemble members, pretraining."""
