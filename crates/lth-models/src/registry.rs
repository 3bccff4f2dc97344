//! The model registry: families of networks, each matching names of a pattern (`lenet_300_100`).

use tch::nn;

use crate::{Built, ModelError, Result, conv, lenet, resnet, vgg, wrn};

/// A family of networks sharing a builder; a name selects one member.
#[derive(Debug)]
pub struct Family {
    /// What names of the family look like.
    pub pattern: &'static str,
    /// The member the papers use.
    pub example: &'static str,
    /// Where the network comes from.
    pub paper: &'static str,
    pub(crate) matches: fn(&str) -> bool,
    pub(crate) build: fn(&str, &nn::Path, [i64; 3], i64, crate::Pack) -> Result<Built>,
}

static FAMILIES: [Family; 6] = [
    Family {
        pattern: "lenet_<width>_<width>…",
        example: "lenet_300_100",
        paper: "LeCun et al. 1998; the LTH paper's MNIST network",
        matches: |n| n.starts_with("lenet_"),
        build: lenet::build,
    },
    Family {
        pattern: "conv_2, conv_4, conv_6",
        example: "conv_4",
        paper: "the LTH paper's CIFAR-10 Conv-2/4/6 (Frankle & Carbin 2019)",
        matches: |n| n.starts_with("conv_"),
        build: conv::build,
    },
    Family {
        pattern: "cifar_vgg_<11|13|16|19>",
        example: "cifar_vgg_19",
        paper: "VGG with BatchNorm for CIFAR (Simonyan & Zisserman 2015; OpenLTH)",
        matches: |n| n.starts_with("cifar_vgg_"),
        build: vgg::build,
    },
    Family {
        pattern: "cifar_resnet_<D>[_<W>], D = 6n+2",
        example: "cifar_resnet_20",
        paper: "CIFAR ResNet-D (He et al. 2016; OpenLTH)",
        matches: |n| n.starts_with("cifar_resnet_"),
        build: resnet::build_cifar,
    },
    Family {
        pattern: "cifar_wrn_<D>_<K>, D = 6n+4",
        example: "cifar_wrn_22_2",
        paper: "Wide ResNet for CIFAR (Zagoruyko & Komodakis 2016; the RigL paper's CIFAR-10 network)",
        matches: |n| n.starts_with("cifar_wrn_"),
        build: wrn::build,
    },
    Family {
        pattern: "imagenet_resnet_<18|34|50>",
        example: "imagenet_resnet_50",
        paper: "ImageNet ResNet v1.5 (He et al. 2016; torchvision)",
        matches: |n| n.starts_with("imagenet_resnet_"),
        build: resnet::build_imagenet,
    },
];

/// Every family of the registry.
pub fn families() -> &'static [Family] {
    &FAMILIES
}

/// The family a model name belongs to.
pub fn family(name: &str) -> Result<&'static Family> {
    FAMILIES
        .iter()
        .find(|f| (f.matches)(name))
        .ok_or_else(|| ModelError::Unknown {
            name: name.to_owned(),
            known: FAMILIES
                .iter()
                .map(|f| f.pattern)
                .collect::<Vec<_>>()
                .join(", "),
        })
}
