// Android library module that packs jobseal into an AAR: the per-ABI libraries and the Kotlin
// bindings that bindings/scripts/build-android.sh lays out in ./generated (never committed).
// Not built on the Linux machine where the bindings were written (no Android SDK there); see
// bindings/README.md. Include it from an app's settings.gradle.kts:
//   include(":jobseal"); project(":jobseal").projectDir = file("<repo>/bindings/android")
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "io.jobseal"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].apply {
        jniLibs.srcDir("generated/jniLibs")
        java.srcDir("generated/kotlin")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // UniFFI's Kotlin calls the library through JNA; the AAR flavour carries JNA's native parts.
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    // For @RequiresApi in the generated Android object cleaner.
    implementation("androidx.annotation:annotation:1.9.1")
}
